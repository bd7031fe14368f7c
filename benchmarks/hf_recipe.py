"""HF transformers + torch side of the benchmarks: the usual fine-tuning recipe an HF user writes
(torch AdamW, weight decay 0.01 except on LayerNorm / bias, linear warm-up over 10 % of the steps
then linear decay, global-norm clip 1.0). Imported only in the benchmarks' HF processes."""

import torch
import transformers


def adamw_with_warmup(model, learning_rate, steps):
  """(optimizer, scheduler) for `steps` training steps."""
  no_decay = [p for n, p in model.named_parameters() if "LayerNorm" in n or n.endswith("bias")]
  decay = [p for n, p in model.named_parameters() if not ("LayerNorm" in n or n.endswith("bias"))]
  opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                           {"params": no_decay, "weight_decay": 0.0}], lr=learning_rate)
  return opt, transformers.get_linear_schedule_with_warmup(opt, int(0.1 * steps), steps)


def train_step(model, batch, opt, sched, bf16=False):
  """One update on `batch` (with labels); returns the loss (detached). bf16: the forward pass
  under torch's CPU autocast to bfloat16 (HF Trainer's `bf16=True`); weights stay float32."""
  with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
    loss = model(**batch).loss
  loss.backward()
  torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
  opt.step()
  sched.step()
  opt.zero_grad()
  return loss.detach()
