"""``llamo train``: seeded, resumable multi-stage training of a small LLaMo from scratch.

Each stage trains the parts it names (``graph`` = GIN, ``projector``, ``lm``) on a weighted mix
of instruction-record files, with AdamW and a warmup + cosine schedule over the stage's step or
time budget, bf16 autocast on CPU, and token-budget batches of similar-length examples. A
checkpoint (model, optimiser, schedule position, RNG and sampler state) is written every few
minutes and at each stage end; rerunning the same command resumes from it.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from pathlib import Path
from typing import Any

import torch

from llamo_plugin.config import LLAMO_SYSTEM_MESSAGE
from llamo_plugin.errors import InvalidSmilesError
from llamo_plugin.train.batches import Example, MixtureSampler, load_examples, token_budget_batches
from llamo_plugin.train.config import StageConfig, TrainConfig

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


class Trainer:
    """Holds the model, data and state of one training run (see module docstring)."""

    def __init__(self, config: TrainConfig, out_dir: Path, data_root: Path) -> None:
        self.config = config
        self.out_dir = out_dir
        self.data_root = data_root
        self.ckpt_path = out_dir / "checkpoints" / "last.pt"
        self.state: dict[str, Any] = {"stage": 0, "step": 0, "elapsed": 0.0, "done": False}
        self._resume_payload: dict[str, Any] | None = None

    # ------------------------------------------------------------------ set-up
    def setup(self) -> None:
        from transformers import AutoTokenizer

        from llamo_plugin.model.factory import build_random_model

        torch.manual_seed(self.config.seed)
        random.seed(self.config.seed)
        if self.config.num_threads:
            torch.set_num_threads(self.config.num_threads)
        tok_dir = self.out_dir / "tokenizer"
        if (tok_dir / "tokenizer.json").is_file():
            tokenizer = AutoTokenizer.from_pretrained(tok_dir)
        else:
            t0 = time.time()
            tokenizer = build_tokenizer(self.config, self.data_root)
            tokenizer.save_pretrained(tok_dir)
            logger.info("trained tokenizer: %d tokens in %.1fs", len(tokenizer), time.time() - t0)
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
        if self.ckpt_path.is_file():
            self._load_checkpoint()

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
        logger.info("resuming from stage %d step %d", self.state["stage"], self.state["step"])

    # --------------------------------------------------------------- training
    def _prepare(self, ex: Example) -> Any:
        try:
            return self.model.prepare(ex.smiles, ex.instruction, answer=ex.answer)
        except InvalidSmilesError:
            return None

    def _set_trainable(self, stage: StageConfig) -> list[torch.nn.Parameter]:
        parts = {
            "graph": self.model.graph.encoder,
            "projector": self.model.graph.projector,
            "lm": self.model.lm,
        }
        params: list[torch.nn.Parameter] = []
        for name, module in parts.items():
            on = name in stage.trainable
            module.train(on)
            for p in module.parameters():
                p.requires_grad_(on)
                if on:
                    params.append(p)
        return params

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
        params = self._set_trainable(stage)
        decay = [p for p in params if p.ndim >= 2]
        no_decay = [p for p in params if p.ndim < 2]
        optimizer = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": stage.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=stage.lr,
            betas=(0.9, 0.95),
        )
        resumed = self._resume_payload
        if resumed is not None and self.state["stage"] == index and resumed["optimizer"]:
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
            pool = [self._prepare(sampler.draw()) for _ in range(POOL_SIZE)]
            pool = [p for p in pool if p is not None]
            lengths = [len(p.prompt.input_ids) for p in pool]
            for batch in token_budget_batches(pool, lengths, stage, batch_rng):
                frac = step / stage.max_steps if stage.max_steps else elapsed / budget_s
                if frac >= 1.0 or (stage.max_steps and step >= stage.max_steps):
                    self._finish_stage(index, optimizer, sampler, batch_rng)
                    return
                t0 = time.time()
                lr = self._lr(stage, step, frac)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.config.bf16_autocast):
                    loss = self.model(batch).loss
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, stage.grad_clip)
                optimizer.step()
                step += 1
                elapsed += time.time() - t0
                self.state.update(step=step, elapsed=elapsed)
                window_loss += float(loss.detach())
                window_tokens += sum(len(b.prompt.input_ids) for b in batch)
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

    @torch.no_grad()
    def validate(self, stage: StageConfig) -> dict[str, float]:
        """Mean answer-token loss on the held-out (``split == "val"``) records of each of the
        stage's files, read from the sibling ``<task>_val.jsonl`` when there is one (at most
        ``VAL_RECORDS`` each); files without val records are skipped."""
        was_training = {m: m.training for m in self.model.modules()}
        self.model.eval()
        losses: dict[str, float] = {}
        for source in stage.data:
            path = _resolve(source.path, self.data_root)
            sibling = path.with_name(path.name.replace("_train.", "_val."))
            if sibling != path and sibling.is_file():  # llamo build-data's <task>_val.jsonl
                path = sibling
            examples = load_examples(path, VAL_RECORDS, "val")
            prepared = [p for p in (self._prepare(e) for e in examples) if p is not None]
            if not prepared:
                continue
            total, count = 0.0, 0
            for start in range(0, len(prepared), 32):
                batch = prepared[start : start + 32]
                n_tokens = sum(sum(1 for lab in p.prompt.labels if lab >= 0) for p in batch)
                total += float(self.model(batch).loss) * n_tokens
                count += n_tokens
            losses[source.path] = total / max(count, 1)
        for module, flag in was_training.items():
            module.train(flag)
        return losses

    def _finish_stage(self, index: int, optimizer: Any, sampler: Any, batch_rng: Any) -> None:
        stage = self.config.stages[index]
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
            }
            fh.write(json.dumps(record) + "\n")
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
            self.model.graph.encoder, self.config.graph_pretrain, self.data_root, self.config.seed
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
        target = self.out_dir / "model"
        save_model(self.model, target, overwrite=True)
        logger.info("saved %s (wall time this run %.1f min)", target, (time.time() - t0) / 60)
        return target


def train(config: TrainConfig, out_dir: Path, data_root: Path) -> Path:
    """Train (or resume) ``config`` into ``out_dir``; returns the saved model directory."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "train_config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    return Trainer(config, out_dir, data_root).run()
