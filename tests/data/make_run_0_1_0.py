"""Writes tests/data/run-0.1.0: a small run directory made by ganrobust before issue 11's restructure
(commit 7bde3a7). Kept so that every later version is tested to read it."""
import sys
import torch
import ganrobust
from ganrobust.models import MLPGenerator, MLPDiscriminator
from ganrobust.data import eight_gaussians

torch.manual_seed(0)
G, D = MLPGenerator(nz=2, hidden=16, dim=2, bound=2.5), MLPDiscriminator(dim=2, hidden=16)
G.config = {"nz": 2, "hidden": 16, "dim": 2, "bound": 2.5}
D.config = {"dim": 2, "hidden": 16}
opt_g = torch.optim.Adam(G.parameters(), 5e-3, betas=(0.5, 0.999))
opt_d = torch.optim.Adam(D.parameters(), 5e-3, betas=(0.5, 0.999))
data = eight_gaussians(512, seed=0).x
bce = torch.nn.BCEWithLogitsLoss()
with ganrobust.watch(G, D, sys.argv[1], every=3, snapshot_every=15, n_probes=32, min_norm_every=2,
                     min_norm_probes=8, bounds=(-2.5, 2.5)):
    for step in range(30):
        real = data[torch.randint(0, 512, (32,))]
        z = torch.randn(32, 2)
        opt_d.zero_grad()
        loss_d = bce(D(real), torch.ones(32)) + bce(D(G(z).detach()), torch.zeros(32))
        loss_d.backward(); opt_d.step()
        opt_g.zero_grad()
        loss_g = bce(D(G(z)), torch.ones(32))
        loss_g.backward(); opt_g.step()
