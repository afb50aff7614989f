# Not a speed benchmark: a PyTorch reference of ProbeGen (Kahana et al. 2025) as its code trains
# it (the transposed-convolution generator or vanilla probes, P = 32, ProbeGen's 6-layer MLP head,
# Adam 3e-4 with a per-step cosine, batches of 32 frozen models) on a glassbox mnist-cnn-acc zoo and
# its own split, to tell a port problem from the method's behaviour. The generator is glassbox's
# 28x28 stack (weightspace::deconv).
# Usage: python bench/probegen_cnn_reference.py ZOO probegen|vanilla EPOCHS SEED
import json, sys, time, numpy as np, torch, torch.nn as nn
from safetensors.numpy import load_file
from scipy.stats import kendalltau
torch.set_num_threads(2)
zoo, method, epochs, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
P = 32
torch.manual_seed(seed); np.random.seed(seed)
spec = json.load(open(f"{zoo}/zoo.json")); labels = json.load(open(f"{zoo}/labels.json"))
n = spec["count"]; shard = spec["shard_size"]
shards = [load_file(f"{zoo}/models-{i:05d}.safetensors") for i in range((n + shard - 1) // shard)]
T = {k: torch.tensor(np.concatenate([s[k] for s in shards])) for k in shards[0]}
acc = T["test_accuracy"].float()
relu = torch.tensor([l["activation"] == "relu" for l in labels])
split = spec["splits"]

def cnn(idx, x):  # x: [P,1,28,28] -> [B, P*10]
    B = len(idx); h = x.repeat(1, B, 1, 1)
    for l in range(3):
        w = T[f"convs.{l}.weight"][idx]; b = T[f"convs.{l}.bias"][idx]
        h = nn.functional.conv2d(h, w.reshape(B * 8, w.shape[2], 3, 3), b.reshape(-1), stride=2, padding=1, groups=B)
        r = relu[idx].repeat_interleave(8).view(1, -1, 1, 1)
        h = torch.where(r, torch.relu(h), torch.tanh(h))
    g = h.mean((2, 3)).view(x.shape[0], B, 8)
    out = torch.einsum("pbc,bkc->bpk", g, T["head.weight"][idx]) + T["head.bias"][idx][:, None, :]
    return out.reshape(B, -1)

if method == "probegen":
    z = nn.Parameter(torch.randn(P, 32, 1, 1))
    gen = nn.Sequential(nn.ConvTranspose2d(32, 64, 4, 1, 0), nn.ConvTranspose2d(64, 32, 3, 2, 1), nn.ConvTranspose2d(32, 16, 4, 2, 1), nn.ConvTranspose2d(16, 16, 4, 2, 1), nn.ConvTranspose2d(16, 1, 3, 1, 1))
    probes = lambda: torch.tanh(gen(z)); params = [z] + list(gen.parameters())
else:
    free = nn.Parameter(torch.randn(P, 1, 28, 28)); probes = lambda: torch.tanh(free); params = [free]
layers = [nn.Linear(P * 10, 256), nn.ReLU()]
for _ in range(4): layers += [nn.Linear(256, 256), nn.ReLU()]
head = nn.Sequential(*layers, nn.Linear(256, 1)); params += list(head.parameters())
opt = torch.optim.Adam(params, lr=3e-4)
train = torch.tensor(split["train"]); steps = (len(train) + 31) // 32
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps)

def tau(ids):
    with torch.no_grad():
        x = probes(); pred = torch.cat([head(cnn(ids[i:i + 64], x)).squeeze(1) for i in range(0, len(ids), 64)])
    return kendalltau(pred.numpy(), acc[ids].numpy()).statistic

best, start = (-2, None, None), time.time()
for e in range(epochs):
    perm = train[torch.randperm(len(train))]
    for i in range(0, len(perm), 32):
        idx = perm[i:i + 32]
        loss = ((head(cnn(idx, probes())).squeeze(1) - acc[idx]) ** 2).mean()
        opt.zero_grad(); loss.backward(); opt.step(); sched.step()
    v, t = tau(torch.tensor(split["val"])), tau(torch.tensor(split["test"]))
    if v > best[0]: best = (v, t, e)
    if e % 10 == 9 or e == epochs - 1:
        x = probes().detach()
        print(f"epoch {e+1}: val {v:.3f} test {t:.3f}; probes mean|x| {x.abs().mean():.3f} per-probe std {x.flatten(1).std(1).mean():.3f}; {time.time()-start:.0f} s", flush=True)
print(f"{method} seed {seed}: test tau at best val epoch {best[2]+1}: {best[1]:.3f}")
