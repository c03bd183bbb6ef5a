"""``llamo train``: seeded, resumable multi-stage training of a small LLaMo from scratch.

Each stage trains the parts it names (``graph`` = GIN, ``projector``, ``lm``) on a weighted mix
of instruction-record files, with AdamW and a warmup + cosine schedule over the stage's step or
time budget, on CUDA with bf16 autocast when a GPU is visible and on the CPU in fp32 otherwise
(:mod:`~llamo_plugin.train.device`), and token-budget batches of similar-length examples. A
checkpoint (model, optimiser, schedule position, RNG and sampler state) is written every few
minutes and at each stage end; rerunning the same command resumes from it, on either device.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from llamo_plugin.config import LLAMO_SYSTEM_MESSAGE
from llamo_plugin.errors import InvalidSmilesError
from llamo_plugin.train.batches import Example, MixtureSampler, load_examples, plan_batches
from llamo_plugin.train.config import StageConfig, TrainConfig
from llamo_plugin.train.decoded_eval import DecodedEval
from llamo_plugin.train.device import TrainDevice, resolve

logger = logging.getLogger(__name__)

#: Template pieces that become single tokens in our tokenizer (shorter prompts, same text).
TEMPLATE_TOKENS = ("[INST]", "[/INST]", "<<SYS>>", "<</SYS>>", LLAMO_SYSTEM_MESSAGE)
POOL_SIZE = 512
#: Held-out records per file used for the stage-end validation loss.
VAL_RECORDS = 256


def _resolve(path: str, data_root: Path) -> Path:
    p = Path(path)
    return p if p.is_absolute() else data_root / p


def build_tokenizer(config: TrainConfig, data_root: Path) -> Any:
    """Train our BPE tokenizer on the stages' instructions, answers and SMILES."""
    from tokenizers import AddedToken

    from llamo_plugin.chem.smiles import parse_smiles, prompt_smiles
    from llamo_plugin.tokenizer.build import train_tokenizer

    texts: list[str] = []
    rng = random.Random(config.seed)
    loaded: dict[tuple[str, int, str], list[Example]] = {}  # a file used by several stages
    for stage in config.stages:
        for source in stage.data:
            key = (source.path, source.max_records, source.split)
            if key not in loaded:
                loaded[key] = load_examples(_resolve(source.path, data_root), *key[1:])
            examples = list(loaded[key])
            rng.shuffle(examples)
            for ex in examples[: config.tokenizer.max_training_texts // 4]:
                try:
                    smiles = prompt_smiles(parse_smiles(ex.smiles))
                except InvalidSmilesError:
                    continue
                texts += [
                    smiles,
                    ex.instruction if isinstance(ex.instruction, str) else "",
                    ex.answer,
                ]
    tokenizer = train_tokenizer(
        texts, config.tokenizer.vocab_size, split_digits=config.tokenizer.split_digits
    )
    tokenizer.add_tokens([AddedToken(t, normalized=False) for t in TEMPLATE_TOKENS])
    return tokenizer


#: Property targets the auxiliary regression head predicts (``Example.qtype``).
AUX_TARGETS = ("homo", "lumo", "gap", "gap_pubchem_ev")


def aux_target_stats(sources: list[list[Example]]) -> dict[str, tuple[float, float]]:
    """Mean and standard deviation of each :data:`AUX_TARGETS` value in the stage's data."""
    values: dict[str, list[float]] = {t: [] for t in AUX_TARGETS}
    for examples in sources:
        for ex in examples:
            if ex.task == "property" and ex.qtype in values:
                try:
                    values[ex.qtype].append(float(ex.answer))
                except ValueError:
                    continue
    out = {}
    for name, vals in values.items():
        if len(vals) >= 2:
            mean = sum(vals) / len(vals)
            std = math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals)) or 1.0
            out[name] = (mean, std)
    return out


def shared_prefix(examples: list[Any]) -> int:
    """Length of the prompt start (token ids, no graph slot, no answer token) that every
    example shares; at most the shortest prompt minus one token."""
    prompts = [e.prompt for e in examples]
    limit = min(len(p.input_ids) for p in prompts) - 1
    first = prompts[0]
    n = 0
    while (
        n < limit
        and first.input_ids[n] >= 0
        and first.labels[n] < 0
        and all(p.input_ids[n] == first.input_ids[n] for p in prompts)
    ):
        n += 1
    return n


def forward_with_graph_tokens(
    model: Any, examples: list[Any], *, share_prefix: bool = True
) -> tuple[Any, torch.Tensor]:
    """:meth:`LlamoModel.forward` (causal-LM loss on the answer tokens, right padding) that
    also returns the graph tokens ``[B, T, D]``.

    With ``share_prefix`` the prompt start shared by the whole batch (chat template and
    system message: 10 of the ~53 tokens of a QM9 property example) runs through the LM once
    (batch 1) and its keys/values are broadcast to every row, as the decode loop does at
    inference: the same loss, ~19% fewer LM FLOPs on property batches. Answer tokens are never
    in the prefix, so no label is lost at its boundary.
    """
    from transformers import DynamicCache

    from llamo_plugin.prompt.assemble import collate_prompts

    batch = collate_prompts(
        [e.prompt for e in examples],
        model.tokenizer.pad_token_id,
        padding_side="right",
        with_labels=True,
    )
    graph_tokens = model.encode_graphs([e.graph for e in examples])
    embeds = model.inputs_embeds(batch, graph_tokens)  # [B, L, D]
    mask = batch.attention_mask.to(model.device)
    labels = batch.labels.to(model.device)
    fixed = shared_prefix(examples) if share_prefix and len(examples) > 1 else 0
    if fixed == 0:
        out = model.lm(inputs_embeds=embeds, attention_mask=mask, labels=labels)
        return out, graph_tokens
    rows, length = embeds.shape[0], embeds.shape[1]
    cache = DynamicCache()
    model.lm.model(inputs_embeds=embeds[:1, :fixed], past_key_values=cache, use_cache=True)
    for layer in cache.layers:  # [1, H, P, d] -> [B, H, P, d] (a view; gradients sum)
        layer.keys = layer.keys.expand(rows, -1, -1, -1)
        layer.values = layer.values.expand(rows, -1, -1, -1)
    positions = torch.arange(fixed, length, device=embeds.device).expand(rows, -1)
    out = model.lm(
        inputs_embeds=embeds[:, fixed:],
        attention_mask=mask,
        position_ids=positions,
        past_key_values=cache,
        labels=labels[:, fixed:],
        use_cache=False,
    )
    return out, graph_tokens


class Trainer:
    """Holds the model, data and state of one training run (see module docstring)."""

    def __init__(self, config: TrainConfig, out_dir: Path, data_root: Path) -> None:
        self.config = config
        self.out_dir = out_dir
        self.data_root = data_root
        self.ckpt_path = out_dir / "checkpoints" / "last.pt"
        self.state: dict[str, Any] = {"stage": 0, "step": 0, "elapsed": 0.0, "done": False}
        self._resume_payload: dict[str, Any] | None = None
        #: the stage's throw-away regression head on the graph tokens (aux_property_weight)
        self.aux_head: torch.nn.Module | None = None
        self.aux_stats: dict[str, tuple[float, float]] = {}
        self.device: TrainDevice = resolve(config.device, config.precision)
        #: the pool being trained on: its examples, batch plan and the next batch (checkpointed,
        #: so a resume continues mid-pool exactly where the run stopped)
        self._pool: dict[str, Any] | None = None

    # ------------------------------------------------------------------ set-up
    def setup(self) -> None:
        from transformers import AutoTokenizer

        from llamo_plugin.model.factory import build_random_model

        torch.manual_seed(self.config.seed)
        random.seed(self.config.seed)
        if self.config.num_threads:
            torch.set_num_threads(self.config.num_threads)
        tok_dir = self.out_dir / "tokenizer"
        if self.config.init_from:
            self._init_from_model(tok_dir)
        elif (tok_dir / "tokenizer.json").is_file():
            tokenizer = AutoTokenizer.from_pretrained(tok_dir)
        else:
            t0 = time.time()
            tokenizer = build_tokenizer(self.config, self.data_root)
            tokenizer.save_pretrained(tok_dir)
            logger.info("trained tokenizer: %d tokens in %.1fs", len(tokenizer), time.time() - t0)
        if not self.config.init_from:
            self.model = build_random_model(
                self.config.lm,
                tokenizer,
                self.config.model.replace(name=self.config.name),
                seed=self.config.seed,
            )
        n_graph = sum(p.numel() for p in self.model.graph.parameters())
        n_lm = sum(p.numel() for p in self.model.lm.parameters())
        logger.info(
            "model: graph+projector %.2fM params, LM %.2fM params", n_graph / 1e6, n_lm / 1e6
        )
        self.model.to(self.device.device)
        logger.info("training on %s", self.device.describe())
        if self.ckpt_path.is_file():
            self._load_checkpoint()

    def _init_from_model(self, tok_dir: Path) -> None:
        """Start from a saved model (``init_from``): its tokenizer and all weights; the
        name, description and decode settings come from this config."""
        from llamo_plugin.checkpoint.format import load_model
        from llamo_plugin.train.sources import repo_root

        src = Path(self.config.init_from)
        src = src if src.is_absolute() else repo_root() / src
        model = load_model(src)
        model.config = model.config.replace(
            name=self.config.name,
            description=self.config.model.description,
            decode=self.config.model.decode.to_dict(),
        )
        if not (tok_dir / "tokenizer.json").is_file():
            model.tokenizer.save_pretrained(tok_dir)
        logger.info("initialised from %s (model checksum %s)", src, model.checksum)
        model.checksum = None
        self.model = model

    @property
    def _on_cuda(self) -> bool:
        return bool(self.device.device.type == "cuda")

    # ------------------------------------------------------------ checkpoints
    def _save_checkpoint(
        self, optimizer: Any, sampler: MixtureSampler, batch_rng: random.Random
    ) -> None:
        self.ckpt_path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "model": self.model.state_dict(),
            "optimizer": optimizer.state_dict() if optimizer is not None else None,
            "state": json.dumps(self.state),
            "sampler": json.dumps(sampler.state()) if sampler is not None else None,
            "batch_rng": json.dumps(batch_rng.getstate()) if batch_rng is not None else None,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self._on_cuda else None,
            "aux_head": self.aux_head.state_dict() if self.aux_head is not None else None,
            "pool": json.dumps(self._pool) if self._pool is not None else None,
        }
        tmp = self.ckpt_path.with_suffix(".tmp")
        torch.save(payload, tmp)
        tmp.replace(self.ckpt_path)
        logger.info("checkpoint: stage %d step %d", self.state["stage"], self.state["step"])

    def _load_checkpoint(self) -> None:
        payload = torch.load(self.ckpt_path, map_location="cpu", weights_only=True)
        self.model.load_state_dict(payload["model"])
        self.state = json.loads(payload["state"])
        self._resume_payload = payload
        torch.set_rng_state(payload["torch_rng"])
        if self._on_cuda and payload.get("cuda_rng") is not None:
            torch.cuda.set_rng_state_all(payload["cuda_rng"])
        logger.info("resuming from stage %d step %d", self.state["stage"], self.state["step"])

    # --------------------------------------------------------------- training
    def _prepare(self, ex: Example) -> Any:
        try:
            return self.model.prepare(ex.smiles, ex.instruction, answer=ex.answer)
        except InvalidSmilesError:
            return None

    def _set_trainable(self, stage: StageConfig) -> list[torch.nn.Parameter]:
        return [p for group in self._param_groups(stage) for p in group["params"]]

    def _param_groups(self, stage: StageConfig) -> list[dict[str, Any]]:
        """AdamW groups: per trainable part, matrices (weight decay) and the rest (none),
        each with its ``lr_mult`` (``stage.lr_multipliers``); sets train/eval mode and
        ``requires_grad`` of every part."""
        parts = {
            "graph": self.model.graph.encoder,
            "projector": self.model.graph.projector,
            "lm": self.model.lm,
        }
        groups: list[dict[str, Any]] = []
        for name, module in parts.items():
            on = name in stage.trainable
            module.train(on)
            params = []
            for p in module.parameters():
                p.requires_grad_(on)
                if on:
                    params.append(p)
            if not on:
                continue
            mult = float(stage.lr_multipliers.get(name, 1.0))
            decay = [p for p in params if p.ndim >= 2]
            no_decay = [p for p in params if p.ndim < 2]
            groups.append({"params": decay, "weight_decay": stage.weight_decay, "lr_mult": mult})
            groups.append({"params": no_decay, "weight_decay": 0.0, "lr_mult": mult})
        return groups

    def _lr(self, stage: StageConfig, step: int, frac: float) -> float:
        if step < stage.warmup_steps:
            return stage.lr * (step + 1) / stage.warmup_steps
        frac = min(max(frac, 0.0), 1.0)
        return stage.min_lr + (stage.lr - stage.min_lr) * 0.5 * (1 + math.cos(math.pi * frac))

    def run_stage(self, index: int) -> None:
        stage = self.config.stages[index]
        sources = [
            (load_examples(_resolve(s.path, self.data_root), s.max_records, s.split), s.weight)
            for s in stage.data
        ]
        logger.info(
            "stage %s: %s",
            stage.name,
            ", ".join(
                f"{s.path} ({len(ex)})" for s, (ex, _) in zip(stage.data, sources, strict=True)
            ),
        )
        sampler = MixtureSampler(sources, seed=self.config.seed + index)
        batch_rng = random.Random(self.config.seed * 1000 + index)
        groups = self._param_groups(stage)
        self.aux_head = None
        if stage.aux_property_weight > 0:
            self.aux_stats = aux_target_stats([ex for ex, _ in sources])
            hidden = self.model.lm.get_input_embeddings().weight.shape[1]
            with torch.random.fork_rng(devices=[]):  # a resumed run keeps its restored RNG
                torch.manual_seed(self.config.seed + 7919 * (index + 1))
                self.aux_head = torch.nn.Linear(hidden, len(AUX_TARGETS))
            self.aux_head.to(self.device.device)
            groups.append({"params": list(self.aux_head.parameters()), "weight_decay": 0.0,
                           "lr_mult": 1.0})  # fmt: skip
        params = [p for g in groups for p in g["params"]]
        optimizer = torch.optim.AdamW(groups, lr=stage.lr, betas=(0.9, 0.95))
        resumed = self._resume_payload
        evaluator = None
        if stage.decoded_eval is not None:
            evaluator = DecodedEval(stage.decoded_eval, self.data_root, self._scibert_vocab())
        pending = None
        if resumed is not None and self.state["stage"] == index and resumed["optimizer"]:
            if resumed.get("pool"):
                pending = json.loads(resumed["pool"])
            if self.aux_head is not None and resumed.get("aux_head") is not None:
                self.aux_head.load_state_dict(resumed["aux_head"])
            optimizer.load_state_dict(resumed["optimizer"])
            sampler.load_state(json.loads(resumed["sampler"]))
            rng_state = json.loads(resumed["batch_rng"])
            batch_rng.setstate((rng_state[0], tuple(rng_state[1]), rng_state[2]))
        self._resume_payload = None

        budget_s = stage.max_minutes * 60 if stage.max_minutes > 0 else float("inf")
        step, elapsed = self.state["step"], self.state["elapsed"]
        last_ckpt = time.time()
        window_loss, window_tokens, window_t0 = 0.0, 0, time.time()
        while True:
            if pending is not None:  # the pool the checkpoint was written in
                drawn = [Example(**e) for e in pending["examples"]]
                plan, cursor = pending["batches"], pending["cursor"]
                pending = None
            else:
                drawn = [sampler.draw() for _ in range(POOL_SIZE)]
                plan, cursor = None, 0
            pool = [(p, ex) for p, ex in ((self._prepare(ex), ex) for ex in drawn) if p is not None]
            if plan is None:
                plan = plan_batches([len(p.prompt.input_ids) for p, _ in pool], stage, batch_rng)
            self._pool = {"examples": [asdict(e) for e in drawn], "batches": plan, "cursor": cursor}
            for k in range(cursor, len(plan)):
                batch = [pool[i] for i in plan[k]]
                self._pool["cursor"] = k  # batch k not trained yet
                frac = step / stage.max_steps if stage.max_steps else elapsed / budget_s
                if frac >= 1.0 or (stage.max_steps and step >= stage.max_steps):
                    if evaluator is not None and self.state.get("last_eval_step") != step:
                        # the end of the schedule is scored too (often the best weights)
                        self._decoded_eval(index, evaluator, optimizer, sampler, batch_rng)
                    self._finish_stage(index, optimizer, sampler, batch_rng)
                    return
                t0 = time.time()
                if evaluator is not None and elapsed >= self.state.get("next_eval", 0.0):
                    if self._decoded_eval(index, evaluator, optimizer, sampler, batch_rng):
                        self._finish_stage(index, optimizer, sampler, batch_rng)
                        return
                    last_ckpt = time.time()
                lr = self._lr(stage, step, frac)
                for group in optimizer.param_groups:
                    group["lr"] = lr * group.get("lr_mult", 1.0)
                with self.device.autocast():
                    loss = self._loss(batch, stage.aux_property_weight)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, stage.grad_clip)
                optimizer.step()
                self._pool["cursor"] = k + 1
                step += 1
                elapsed += time.time() - t0
                self.state.update(step=step, elapsed=elapsed)
                window_loss += float(loss.detach())
                window_tokens += sum(len(p.prompt.input_ids) for p, _ in batch)
                if step % self.config.log_every_steps == 0:
                    dt = time.time() - window_t0
                    logger.info(
                        "%s step %d (%.0f%%) loss %.4f lr %.2e %.0f tok/s",
                        stage.name,
                        step,
                        100 * frac,
                        window_loss / self.config.log_every_steps,
                        lr,
                        window_tokens / max(dt, 1e-9),
                    )
                    window_loss, window_tokens, window_t0 = 0.0, 0, time.time()
                if time.time() - last_ckpt > self.config.checkpoint_every_minutes * 60:
                    self._save_checkpoint(optimizer, sampler, batch_rng)
                    last_ckpt = time.time()

    def _loss(self, batch: list[Any], aux_weight: float) -> torch.Tensor:
        """The LM loss of a batch of ``(PreparedExample, Example)`` pairs, plus the auxiliary
        regression loss on the graph tokens when ``aux_weight`` > 0 and the batch has
        property examples."""
        prepared = [p for p, _ in batch]
        out, graph_tokens = forward_with_graph_tokens(
            self.model, prepared, share_prefix=self.config.share_prompt_prefix
        )
        if self.aux_head is None or aux_weight <= 0:
            return out.loss
        targets, rows, cols = [], [], []
        for row, (_, ex) in enumerate(batch):
            if ex.task == "property" and ex.qtype in self.aux_stats:
                mean, std = self.aux_stats[ex.qtype]
                try:
                    value = float(ex.answer)
                except ValueError:
                    continue
                rows.append(row)
                cols.append(AUX_TARGETS.index(ex.qtype))
                targets.append((value - mean) / std)
        if not rows:
            return out.loss
        pred = self.aux_head(graph_tokens[rows].mean(dim=1))  # [b, n_aux]
        at = torch.arange(len(rows), device=pred.device)
        picked = pred[at, torch.tensor(cols, device=pred.device)]
        want = torch.tensor(targets, dtype=torch.float32, device=picked.device)
        aux = torch.nn.functional.mse_loss(picked.float(), want)  # fp32 also under autocast
        return out.loss + aux_weight * aux

    @staticmethod
    def _scibert_vocab() -> Path | None:
        """The SciBERT vocabulary BLEU is computed with (``../shared/data``), if present."""
        from llamo_plugin.eval.description import VOCAB_FILE
        from llamo_plugin.train.sources import default_data_dir

        path = default_data_dir() / VOCAB_FILE
        return path if path.is_file() else None

    def _decoded_eval(
        self, index: int, evaluator: DecodedEval, optimizer: Any, sampler: Any,
        batch_rng: Any,
    ) -> bool:  # fmt: skip
        """Run the decoded validation, keep the best weights; True when patience ran out."""
        stage = self.config.stages[index]
        cfg = stage.decoded_eval
        assert cfg is not None
        t0 = time.time()
        flags = {m: m.training for m in self.model.modules()}
        self.model.eval()
        result = evaluator.run(self.model)
        losses = self.validate(stage, cfg.loss_files, cfg.loss_records) if cfg.loss_files else {}
        for module, flag in flags.items():
            module.train(flag)
        best = self.state.get("best_score")
        improved = best is None or result["score"] < best
        if improved:
            self.state.update(best_score=result["score"], best_step=self.state["step"],
                              evals_since_best=0)  # fmt: skip
            best_path = self.ckpt_path.with_name("best.pt")
            best_path.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"model": self.model.state_dict(), "state": json.dumps(self.state)},
                       best_path.with_suffix(".tmp"))  # fmt: skip
            best_path.with_suffix(".tmp").replace(best_path)
        else:
            self.state["evals_since_best"] = self.state.get("evals_since_best", 0) + 1
        self.state["next_eval"] = self.state["elapsed"] + cfg.every_minutes * 60
        self.state["last_eval_step"] = self.state["step"]
        record = {
            "stage": stage.name,
            "step": self.state["step"],
            "minutes": round(self.state["elapsed"] / 60, 2),
            "decoded_val": result,
            "val_loss": losses,
            "best": improved,
            "eval_s": round(time.time() - t0, 1),
        }
        with open(self.out_dir / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")
        logger.info(
            "%s step %d decoded val: score %.4f %s (%s) %s in %.0fs",
            stage.name,
            self.state["step"],
            result["score"],
            " ".join(
                [
                    f"{k} mae {v['mae_failures_as_mean']:.4f} rho {v['spearman'] or 0:.3f} "
                    f"distinct {v['n_distinct']}"
                    for k, v in result["targets"].items()
                ]
                + (
                    [f"description bleu4 {result['description']['bleu4']:.4f}"]
                    if "description" in result
                    else []
                )
                + ([f"qa accuracy {result['qa']['accuracy']:.3f}"] if "qa" in result else [])
            ),
            "best" if improved else f"no gain x{self.state['evals_since_best']}",
            " ".join(f"{k.split('_')[0]} {v:.3f}" for k, v in losses.items()),
            time.time() - t0,
        )
        self._save_checkpoint(optimizer, sampler, batch_rng)
        return bool(cfg.patience) and self.state.get("evals_since_best", 0) >= cfg.patience

    @torch.no_grad()
    def validate(
        self,
        stage: StageConfig,
        files: tuple[str, ...] | None = None,
        max_records: int = VAL_RECORDS,
    ) -> dict[str, float]:
        """Mean answer-token loss on the held-out (``split == "val"``) records of each of the
        stage's files, read from the sibling ``<task>_val.jsonl`` when there is one (at most
        ``VAL_RECORDS`` each); files without val records are skipped."""
        was_training = {m: m.training for m in self.model.modules()}
        self.model.eval()
        losses: dict[str, float] = {}
        for name in files if files is not None else [s.path for s in stage.data]:
            path = _resolve(name, self.data_root)
            sibling = path.with_name(path.name.replace("_train.", "_val."))
            if sibling != path and sibling.is_file():  # llamo build-data's <task>_val.jsonl
                path = sibling
            examples = load_examples(path, max_records, "val")
            prepared = [p for p in (self._prepare(e) for e in examples) if p is not None]
            if not prepared:
                continue
            total, count = 0.0, 0
            for start in range(0, len(prepared), 32):
                batch = prepared[start : start + 32]
                n_tokens = sum(sum(1 for lab in p.prompt.labels if lab >= 0) for p in batch)
                total += float(self.model(batch).loss) * n_tokens
                count += n_tokens
            losses[name] = total / max(count, 1)
        for module, flag in was_training.items():
            module.train(flag)
        return losses

    def _finish_stage(self, index: int, optimizer: Any, sampler: Any, batch_rng: Any) -> None:
        stage = self.config.stages[index]
        best_path = self.ckpt_path.with_name("best.pt")
        if stage.decoded_eval is not None and best_path.is_file():
            # the stage's result is its best decoded-validation weights, not its last ones
            best = torch.load(best_path, map_location="cpu", weights_only=True)
            self.model.load_state_dict(best["model"])
            logger.info(
                "stage %s: keeping the weights of step %s (decoded val score %.4f)",
                stage.name,
                self.state.get("best_step"),
                self.state.get("best_score"),
            )
            best_path.rename(best_path.with_name(f"best-{stage.name}.pt"))
        logger.info(
            "stage %s finished: %d steps, %.1f min",
            stage.name,
            self.state["step"],
            self.state["elapsed"] / 60,
        )
        val = self.validate(stage)
        for path, loss in val.items():
            logger.info("stage %s val loss %s: %.4f", stage.name, path, loss)
        with open(self.out_dir / "metrics.jsonl", "a") as fh:
            record = {
                "stage": stage.name,
                "steps": self.state["step"],
                "minutes": round(self.state["elapsed"] / 60, 2),
                "val_loss": val,
                "best_step": self.state.get("best_step"),
                "best_score": self.state.get("best_score"),
            }
            fh.write(json.dumps(record) + "\n")
        self._pool = None
        self.state = {
            "stage": index + 1,
            "step": 0,
            "elapsed": 0.0,
            "done": index + 1 >= len(self.config.stages),
        }
        self._save_checkpoint(None, None, None)

    def pretrain_graph(self) -> None:
        """Stage 0 (:mod:`llamo_plugin.train.graph_pretrain`); not resumable mid-way (short)."""
        from llamo_plugin.train.graph_pretrain import pretrain_graph_encoder

        assert self.config.graph_pretrain is not None
        metrics = pretrain_graph_encoder(
            self.model.graph.encoder,
            self.config.graph_pretrain,
            self.data_root,
            self.config.seed,
            device=self.device,
        )
        with open(self.out_dir / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps({"stage": "stage0-graph", **metrics}) + "\n")
        self.state["graph_pretrained"] = True
        self._save_checkpoint(None, None, None)

    def run(self) -> Path:
        from llamo_plugin.checkpoint.format import save_model

        self.setup()
        t0 = time.time()
        if (
            self.config.graph_pretrain is not None
            and self.state["stage"] == 0
            and not self.state.get("graph_pretrained")
        ):
            self.pretrain_graph()
        for index in range(self.state["stage"], len(self.config.stages)):
            self.run_stage(index)
        self.model.eval()
        self.model.to("cpu")  # the saved model (and its checksum) does not depend on the device
        target = self.out_dir / "model"
        save_model(self.model, target, overwrite=True)
        logger.info("saved %s (wall time this run %.1f min)", target, (time.time() - t0) / 60)
        return target


def train(config: TrainConfig, out_dir: Path, data_root: Path) -> Path:
    """Train (or resume) ``config`` into ``out_dir``; returns the saved model directory."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "train_config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    return Trainer(config, out_dir, data_root).run()
