"""Cross-entropy over a vocabulary without full-vocabulary logits.

A compiled model defers its vocabulary head (`specc.compiler.Outputs.deferred`):
the loss gets the head's features (N, d) and projection weight (V, d) instead
of (N, V) logits. `LinearCrossEntropy` walks the rows in chunks; per chunk it
computes the logits, the loss (log-sum-exp minus the label's logit), and at
once the gradient (softmax minus one-hot, built in place) multiplied back into
the features' and the weight's gradients. Only one chunk of logits exists at a
time, in one reused buffer, and the backward pass only scales, in place, the
gradients the forward computed. The matrix
multiplies are the same three as the plain path's; what goes is materialising,
zero-filling and re-reading a (N, V) logits tensor, its log-softmax and its
gradient.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from specc.runtime.batch import LossSums

from specc.runtime.objectives.base import cross_entropy_sum
from specc.compiler import DeferredLogits, Outputs

IGNORE = -100
CHUNK_BYTES = 8 << 20  # fp32 logits per chunk on CPU: few enough to be cheap to touch, enough for fast matmuls
CHUNK_BYTES_GPU = 256 << 20  # on a GPU, fewer and larger chunks keep the kernels busy
MIN_ROWS = 256  # below this the weight-gradient matmul (inner size = rows) loses speed


def chunk_rows(vocab: int, device: torch.device | None = None) -> int:
    budget = CHUNK_BYTES_GPU if device is not None and device.type == "cuda" else CHUNK_BYTES
    return max(MIN_ROWS, budget // (4 * vocab))


class LinearCrossEntropy(torch.autograd.Function):
    """(sum of CE over rows with label != -100, number of those rows whose argmax is the label, counted
    only when `count_hits`: it costs another pass over the logits)."""

    @staticmethod
    def forward(ctx: Any, features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,  # type: ignore[override]
                labels: torch.Tensor, rows: int, count_hits: bool) -> tuple[torch.Tensor, torch.Tensor]:
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        dtype = _compute_dtype(features)
        h_all, w = features.to(dtype), weight.to(dtype)
        b = bias.to(dtype) if bias is not None else None
        masked = bool((labels == IGNORE).any())
        n_rows, vocab = h_all.shape[0], w.shape[0]
        gh = torch.empty_like(features) if need_h else None
        gw = torch.empty(weight.shape, dtype=torch.float32, device=weight.device) if need_w else None
        gb = torch.empty(vocab, dtype=torch.float32, device=weight.device) if need_b else None
        total = torch.zeros((), dtype=torch.float32, device=features.device)
        correct = torch.zeros((), dtype=torch.long, device=features.device)
        buf = torch.empty(min(rows, n_rows), vocab, dtype=dtype, device=features.device)  # one chunk's logits, reused
        with torch.autocast(features.device.type, enabled=False):
            for start in range(0, n_rows, rows):
                h, y = h_all[start : start + rows], labels[start : start + rows]
                n = h.shape[0]
                z = buf[:n]
                torch.mm(h, w.t(), out=z) if b is None else torch.addmm(b, h, w.t(), out=z)  # (n, V)
                z = z if dtype == torch.float32 else z.float()
                valid = (y != IGNORE) if masked else None
                target = torch.where(valid, y, 0) if valid is not None else y
                if count_hits:
                    hits = z.argmax(1) == y
                    correct += (hits & valid if valid is not None else hits).sum()
                # CE = logsumexp(z) - z[label]; the softmax is built in place: z - max, exp, / sum.
                picked = z.gather(1, target[:, None]).squeeze(1)  # (n,)
                top = z.amax(1, keepdim=True)  # (n, 1)
                z.sub_(top).exp_()
                sums = z.sum(1, keepdim=True)  # (n, 1)
                rows_ce = (sums.log() + top).squeeze(1) - picked
                total += (torch.where(valid, rows_ce, 0.0) if valid is not None else rows_ce).sum()
                if not (need_h or need_w or need_b):
                    continue
                grad = z.div_(sums)  # softmax; minus one at the label: d(CE sum)/d(logits)
                grad.scatter_add_(1, target[:, None], torch.full((n, 1), -1.0, device=grad.device))
                if valid is not None:
                    grad.mul_(valid[:, None])
                g = grad if dtype == torch.float32 else grad.to(dtype)
                if gh is not None:
                    if gh.dtype == dtype:
                        torch.mm(g, w, out=gh[start : start + n])
                    else:
                        gh[start : start + n] = torch.mm(g, w)
                if gw is not None:
                    if dtype != torch.float32:
                        part = torch.mm(g.t(), h).float()
                        gw.copy_(part) if start == 0 else gw.add_(part)
                    elif start == 0:
                        torch.mm(g.t(), h, out=gw)
                    else:
                        gw.addmm_(g.t(), h)
                if gb is not None:
                    torch.sum(grad, 0, out=gb) if start == 0 else gb.add_(grad.sum(0))
        ctx.save_for_backward(gh, gw, gb)
        ctx.dtypes = (weight.dtype, bias.dtype if bias is not None else None)
        ctx.done = False
        ctx.mark_non_differentiable(correct)
        return total, correct

    @staticmethod
    def backward(ctx: Any, g_total: torch.Tensor, g_correct: Any) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        # The gradients were computed in the forward; scaling them in place spares a copy of each, so
        # they can be handed out once only.
        if ctx.done:
            raise RuntimeError("the chunked vocabulary cross-entropy supports one backward pass (no retain_graph)")
        ctx.done = True
        gh, gw, gb = ctx.saved_tensors
        w_dtype, b_dtype = ctx.dtypes
        return (
            gh.mul_(g_total) if gh is not None else None,
            gw.mul_(g_total).to(w_dtype) if gw is not None else None,
            gb.mul_(g_total).to(b_dtype) if gb is not None else None,
            None, None, None,
        )


def _compute_dtype(t: torch.Tensor) -> torch.dtype:
    """The matmul dtype autocast would use here (bf16/fp16 on GPU under autocast), else the tensor's."""
    if t.device.type == "cuda" and torch.is_autocast_enabled("cuda"):
        return torch.get_autocast_dtype("cuda")
    return t.dtype


def linear_cross_entropy_sum(head: DeferredLogits, labels: torch.Tensor, count_hits: bool = False
                             ) -> tuple[torch.Tensor, torch.Tensor]:
    """(CE summed over labels != -100, count of correct argmax predictions if `count_hits`) of `head`'s logits."""
    d = head.features.shape[-1]
    features, target = head.features.reshape(-1, d), labels.reshape(-1)
    if features.shape[0] != target.shape[0]:
        raise ValueError(f"{features.shape[0]} scored rows but {target.shape[0]} labels")
    rows = chunk_rows(head.weight.shape[0], features.device)
    return LinearCrossEntropy.apply(features, head.weight, head.bias, target, rows, count_hits)


def vocab_cross_entropy(outputs: Mapping[str, torch.Tensor], output: str, labels: torch.Tensor, sums: LossSums,
                        name: str, accuracy: str | None = None) -> torch.Tensor:
    """Mean CE of model output `output` (logits) against `labels` (-100 ignored), recording the sum and
    count under `name` (and, with `accuracy`, the argmax hits under that name), as `cross_entropy_sum`
    does; in chunks, never holding the full logits, when the model deferred that vocabulary head."""
    head = outputs.deferred(output) if isinstance(outputs, Outputs) else None
    if head is None:
        logits = outputs[output]
        if accuracy is not None:
            hits = (logits.detach().argmax(-1) == labels) & (labels != IGNORE)
            sums.add(accuracy, float(hits.sum()), int((labels != IGNORE).sum()))
        return cross_entropy_sum(logits, labels, sums, name)
    total, correct = linear_cross_entropy_sum(head, labels, accuracy is not None)
    count = int((labels != IGNORE).sum())
    if accuracy is not None:
        sums.add(accuracy, float(correct), count)
    sums.add(name, float(total.detach()), count)
    return total / max(count, 1)


