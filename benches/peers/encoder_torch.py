"""PyTorch beside shoplab's session encoder (issue #17, must-hold 4).

The same encoder as `crates/policy/src/seq/encoder.rs` and the same work
as `cargo bench --bench catalog`'s training figure: a 2-layer,
64-dimensional, 4-head pre-layer-norm transformer over sessions of 20
items (a start token and 20 item tokens, learned positions, causal
attention, a 4×-wide ReLU MLP, a final layer norm, the last token's
output), a catalog of 1,000 items, batches of 64 sessions; one step is a
forward pass, the loss mean((h − 1)²) and the backward pass (no
optimiser step, as in the Rust bench). Attention is
`scaled_dot_product_attention` with `is_causal=True`, PyTorch's fastest
path for sessions without padding. Reported: the median of 30 timed steps
after 5 warm-up steps, as sequences a second, on one CPU thread
(`torch.set_num_threads(1)`), and on the GPU when there is one.

Run: `python3 benches/peers/encoder_torch.py` (any PyTorch 2.x).
"""

import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

ITEMS, DIM, HEADS, LAYERS, HISTORY, BATCH = 1000, 64, 4, 2, 20, 64


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(DIM), nn.LayerNorm(DIM)
        self.query, self.key, self.value, self.output = (nn.Linear(DIM, DIM) for _ in range(4))
        self.up, self.down = nn.Linear(DIM, 4 * DIM), nn.Linear(4 * DIM, DIM)

    def forward(self, x):
        b, t, d = x.shape
        h = self.norm1(x)
        split = lambda y: y.view(b, t, HEADS, d // HEADS).transpose(1, 2)
        a = F.scaled_dot_product_attention(
            split(self.query(h)), split(self.key(h)), split(self.value(h)), is_causal=True
        )
        x = x + self.output(a.transpose(1, 2).reshape(b, t, d))
        return x + self.down(F.relu(self.up(self.norm2(x))))


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.items = nn.Embedding(ITEMS + 2, DIM)
        self.positions = nn.Parameter(torch.randn(HISTORY + 1, DIM) * 0.02)
        self.blocks = nn.ModuleList(Block() for _ in range(LAYERS))
        self.final = nn.LayerNorm(DIM)

    def forward(self, ids):
        x = self.items(ids) + self.positions
        for block in self.blocks:
            x = block(x)
        return self.final(x[:, -1])


def sequences_per_second(device):
    torch.manual_seed(3)
    model = Encoder().to(device)
    # The start token (id 1), then 20 items (ids 2 .. ITEMS + 1).
    items = torch.randint(0, ITEMS, (BATCH, HISTORY)) + 2
    ids = torch.cat([torch.ones(BATCH, 1, dtype=torch.long), items], dim=1).to(device)
    times = []
    for step in range(35):
        start = time.perf_counter()
        model.zero_grad(set_to_none=True)
        out = model(ids)
        loss = (out - 1.0).pow(2).mean()
        loss.backward()
        if device == "cuda":
            torch.cuda.synchronize()
        if step >= 5:
            times.append(time.perf_counter() - start)
    t = statistics.median(times)
    return t, BATCH / t


def main():
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, Python {sys.version.split()[0]}")
    t, rate = sequences_per_second("cpu")
    print(
        f"pytorch encoder {LAYERS} layers x dim {DIM} x {HEADS} heads, history {HISTORY}, "
        f"batch {BATCH}, forward + backward, 1 CPU thread: {1e3 * t:.1f} ms a batch, "
        f"{rate:.0f} sequences/s (median of 30)"
    )
    if torch.cuda.is_available():
        t, rate = sequences_per_second("cuda")
        print(
            f"pytorch encoder, same, on {torch.cuda.get_device_name()}: {1e3 * t:.2f} ms a batch, "
            f"{rate:.0f} sequences/s (median of 30)"
        )


if __name__ == "__main__":
    main()
