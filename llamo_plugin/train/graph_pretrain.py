"""Stage 0 of ``llamo train``: supervised pretraining of the GIN graph encoder.

LLaMo starts from a *pretrained* GIN (MoleculeSTM's GraphMVP-initialised encoder, reference
§3); we cannot download it, so we pretrain ours on the open training molecules before the
language stages. Targets, all computed without any evaluation molecule:

- QM9 HOMO, LUMO and HOMO-LUMO gap (Hartree) of the property *training* molecules;
- RDKit-exact structure counts on every training molecule (QM9 and ChEBI-20 validation):
  heavy atoms per element, hydrogens, rings, aromatic rings, H-bond donors/acceptors, formal
  charge, molecular weight, rotatable bonds, TPSA.

Each target is standardised (training mean/std) and regressed with a masked MSE (a ChEBI
molecule has no QM9 values) by a small head on sum- and mean-pooled node states of all GIN
levels (the projector reads every level too). The head is thrown away afterwards; the
encoder is then frozen for the language stages (its BatchNorm in eval mode).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from llamo_plugin.config import FrozenConfig
from llamo_plugin.errors import ConfigError, InvalidSmilesError
from llamo_plugin.train.device import TrainDevice

logger = logging.getLogger(__name__)

QM9_TARGETS = ("homo", "lumo", "gap")
#: The drug-like PubChem DFT gap (eV): its own target, never pooled with QM9's gap.
PUBCHEM_TARGETS = ("gap_pubchem_ev",)
ELEMENTS = ("C", "N", "O", "F", "S", "Cl", "Br", "P", "I")
COUNT_TARGETS = (
    *(f"n_{e}" for e in ELEMENTS),
    "n_heavy",
    "n_H",
    "rings",
    "aromatic_rings",
    "hbd",
    "hba",
    "charge",
    "mol_weight",
    "rotatable_bonds",
    "tpsa",
)
TARGETS = (*QM9_TARGETS, *PUBCHEM_TARGETS, *COUNT_TARGETS)


@dataclass(frozen=True)
class GraphPretrainConfig(FrozenConfig):
    """Stage-0 settings. Paths are relative to the training data root.

    ``property_file``: property records (QM9 values by ``qtype``); ``val_file``: the held-out
    property records whose ``val`` split gives the reported validation MAE;
    ``molecule_files``: further record files whose training molecules get the RDKit count
    targets only; ``pubchem_gap_file`` (optional): drug-like PubChem gap records (eV,
    ``llamo build-data``'s ``pubchem_gap_*.jsonl``), a separate target whose ``val`` split
    is reported too.
    """

    property_file: str = "property_train.jsonl"
    val_file: str = "property_val.jsonl"
    molecule_files: tuple[str, ...] = ("description_train.jsonl",)
    pubchem_gap_file: str = ""
    max_minutes: float = 10.0
    max_steps: int = 0
    batch_size: int = 128
    lr: float = 2e-3
    min_lr: float = 1e-4
    warmup_steps: int = 100
    weight_decay: float = 0.01
    max_molecules: int = 0

    def __post_init__(self) -> None:
        if self.max_minutes <= 0 and self.max_steps <= 0:
            raise ConfigError("graph_pretrain: set max_minutes or max_steps")
        if self.batch_size < 2:
            raise ConfigError("graph_pretrain: batch_size must be >= 2 (BatchNorm)")


def count_targets(mol: Any) -> list[float]:
    """RDKit-exact structure targets of one molecule, in :data:`COUNT_TARGETS` order."""
    from rdkit.Chem import Descriptors, Lipinski, rdMolDescriptors

    symbols = [a.GetSymbol() for a in mol.GetAtoms()]
    ring_info = mol.GetRingInfo()
    values = [float(symbols.count(e)) for e in ELEMENTS]
    values += [
        float(mol.GetNumHeavyAtoms()),
        float(sum(a.GetTotalNumHs() for a in mol.GetAtoms())),
        float(ring_info.NumRings()),
        float(rdMolDescriptors.CalcNumAromaticRings(mol)),
        float(Lipinski.NumHDonors(mol)),
        float(Lipinski.NumHAcceptors(mol)),
        float(sum(a.GetFormalCharge() for a in mol.GetAtoms())),
        float(Descriptors.MolWt(mol)) / 100.0,
        float(rdMolDescriptors.CalcNumRotatableBonds(mol)),
        float(rdMolDescriptors.CalcTPSA(mol)) / 10.0,
    ]
    return values


@dataclass
class PretrainSet:
    """Featurised molecules and their target matrix ``[M, T]`` (NaN = no target)."""

    graphs: list[Any]
    targets: np.ndarray


def _read_records(path: Path, split: str) -> list[dict[str, Any]]:
    out = []
    with open(path) as fh:
        for line in fh:
            if line.strip():
                rec = json.loads(line)
                if rec.get("split", "train") == split:
                    out.append(rec)
    return out


def load_pretrain_set(
    config: GraphPretrainConfig, data_root: Path, split: str = "train"
) -> PretrainSet:
    """Molecules of ``split`` with their targets; unparseable SMILES are skipped and counted."""
    from llamo_plugin.chem.featurize import mol_to_graph
    from llamo_plugin.chem.smiles import mol_from_smiles

    qm9: dict[str, dict[str, float]] = {}
    prop_file = config.property_file if split == "train" else config.val_file
    for rec in _read_records(data_root / prop_file, split):
        qm9.setdefault(rec["smiles"], {})[rec["qtype"]] = float(rec["answer"])
    if config.pubchem_gap_file:
        path = data_root / config.pubchem_gap_file
        sibling = path.with_name(path.name.replace("_train.", f"_{split}."))
        for rec in _read_records(sibling if sibling.is_file() else path, split):
            qm9.setdefault(rec["smiles"], {})[PUBCHEM_TARGETS[0]] = float(rec["answer"])
    order = list(qm9)
    if split == "train":
        for name in config.molecule_files:
            for rec in _read_records(data_root / name, split):
                if rec["smiles"] not in qm9:
                    qm9[rec["smiles"]] = {}
                    order.append(rec["smiles"])
    if config.max_molecules:
        random.Random(0).shuffle(order)
        order = order[: config.max_molecules]
    graphs, rows, skipped = [], [], 0
    for smiles in order:
        try:  # the same atom graph as featurize() up to atom order (the GIN is invariant)
            mol = mol_from_smiles(smiles)
        except InvalidSmilesError:
            skipped += 1
            continue
        graphs.append(mol_to_graph(mol))
        props = qm9[smiles]
        rows.append(
            [props.get(k, math.nan) for k in (*QM9_TARGETS, *PUBCHEM_TARGETS)] + count_targets(mol)
        )
    if skipped:
        logger.warning("graph pretraining: %d unparseable SMILES skipped", skipped)
    return PretrainSet(graphs, np.asarray(rows, dtype=np.float32).reshape(-1, len(TARGETS)))


class PretrainHead:
    """Factory for the regression head (kept out of the shipped model)."""

    @staticmethod
    def build(hidden: int, levels: int, num_targets: int) -> Any:
        from torch import nn

        width = 2 * hidden * levels  # sum- and mean-pooled states of every level
        return nn.Sequential(nn.Linear(width, 512), nn.ReLU(), nn.Linear(512, num_targets))


def pooled_levels(encoder: Any, batch: Any) -> Any:
    """``[B, 2 * levels * hidden]``: sum and mean over atoms of every GIN level's states
    (on the encoder's device)."""
    import torch

    from llamo_plugin.graph.batching import graph_batch_inputs, to_torch

    device = next(encoder.parameters()).device
    inputs = {k: v.to(device) for k, v in to_torch(graph_batch_inputs(batch)).items()}
    levels = encoder(inputs["atom_features"], inputs["edge_index"], inputs["bond_features"])
    h = torch.cat(levels, dim=-1)  # [N, levels * hidden]
    index = torch.from_numpy(batch.node_graph).to(device)
    summed = h.new_zeros(batch.num_graphs, h.shape[1]).index_add(0, index, h)
    counts = torch.bincount(index, minlength=batch.num_graphs).clamp(min=1).unsqueeze(1)
    return torch.cat([summed, summed / counts], dim=-1)


def masked_mse(pred: Any, target: Any) -> Any:
    """Mean squared error over the finite entries of ``target`` (both ``[B, T]``)."""
    import torch

    mask = torch.isfinite(target).to(pred.dtype)
    diff = (pred - target.nan_to_num()) * mask
    return (diff**2).sum() / mask.sum().clamp(min=1)


def pretrain_graph_encoder(
    encoder: Any,
    config: GraphPretrainConfig,
    data_root: Path,
    seed: int = 0,
    *,
    device: TrainDevice | None = None,
) -> dict[str, Any]:
    """Train ``encoder`` (a :class:`~llamo_plugin.graph.gin.GINEncoder`) in place, on the
    encoder's device (under ``device``'s autocast when given).

    Returns a metrics dict: steps, minutes, and the validation MAE (Hartree) of HOMO, LUMO
    and gap on the property file's ``val`` split.
    """
    import torch

    from llamo_plugin.graph.batching import collate_graphs

    t_load = time.time()
    train_set = load_pretrain_set(config, data_root, "train")
    val_set = load_pretrain_set(config, data_root, "val")
    logger.info(
        "graph pretraining: %d training molecules, %d val molecules (%.0fs to featurise)",
        len(train_set.graphs),
        len(val_set.graphs),
        time.time() - t_load,
    )
    mean = np.nanmean(train_set.targets, axis=0)
    std = np.nanstd(train_set.targets, axis=0)
    std = np.where(std > 1e-8, std, 1.0)
    norm = torch.from_numpy((train_set.targets - mean) / std)

    torch.manual_seed(seed)
    levels = encoder.config.num_layers + 1
    where = next(encoder.parameters()).device
    norm = norm.to(where)
    head = PretrainHead.build(encoder.config.hidden_size, levels, len(TARGETS)).to(where)
    autocast = device.autocast if device is not None else contextlib.nullcontext
    encoder.train()
    params = [*encoder.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    budget = config.max_minutes * 60 if config.max_minutes > 0 else float("inf")
    rng = random.Random(seed)
    order: list[int] = []
    step, elapsed, window = 0, 0.0, 0.0
    while True:
        frac = step / config.max_steps if config.max_steps else elapsed / budget
        if frac >= 1.0:
            break
        if len(order) < config.batch_size:
            order = list(range(len(train_set.graphs)))
            rng.shuffle(order)
        idx, order = order[: config.batch_size], order[config.batch_size :]
        t0 = time.time()
        if step < config.warmup_steps:
            lr = config.lr * (step + 1) / config.warmup_steps
        else:
            lr = config.min_lr + (config.lr - config.min_lr) * 0.5 * (1 + math.cos(math.pi * frac))
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = collate_graphs([train_set.graphs[i] for i in idx])
        with autocast():
            loss = masked_mse(head(pooled_levels(encoder, batch)).float(), norm[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        step += 1
        elapsed += time.time() - t0
        window += float(loss.detach())
        if step % 100 == 0:
            logger.info(
                "graph pretraining step %d (%.0f%%) loss %.4f lr %.2e",
                step,
                100 * min(frac, 1.0),
                window / 100,
                lr,
            )
            window = 0.0

    mae = evaluate_pretrain(encoder, head, val_set, mean, std)
    encoder.eval()
    metrics = {"steps": step, "minutes": round(elapsed / 60, 2), "val_mae_hartree": mae}
    logger.info("graph pretraining done: %s", metrics)
    return metrics


def evaluate_pretrain(
    encoder: Any, head: Any, val_set: PretrainSet, mean: np.ndarray, std: np.ndarray
) -> dict[str, float]:
    """MAE of the QM9 targets (Hartree) and the PubChem gap (eV, with its Spearman
    correlation as ``gap_pubchem_ev_spearman``) on ``val_set`` (eval-mode BatchNorm)."""
    import torch

    from llamo_plugin.graph.batching import collate_graphs

    if not val_set.graphs:
        return {}
    encoder.eval()
    preds = []
    with torch.no_grad():
        for start in range(0, len(val_set.graphs), 256):
            batch = collate_graphs(val_set.graphs[start : start + 256])
            preds.append(head(pooled_levels(encoder, batch)).float().cpu().numpy())
    pred = np.concatenate(preds) * std + mean
    out = {}
    for j, name in enumerate((*QM9_TARGETS, *PUBCHEM_TARGETS)):
        ok = np.isfinite(val_set.targets[:, j])
        if ok.any():
            out[name] = round(float(np.abs(pred[ok, j] - val_set.targets[ok, j]).mean()), 5)
        if name in PUBCHEM_TARGETS and ok.sum() > 2:
            from llamo_plugin.eval.property import spearman

            rho = spearman(list(val_set.targets[ok, j]), list(pred[ok, j]))
            out[f"{name}_spearman"] = round(rho, 4) if rho is not None else None
    encoder.train()
    return out
