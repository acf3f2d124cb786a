#!/usr/bin/env python3
"""The main job's model (resnet_mini) and schedule in PyTorch on the CPU, on convoy's embedded
Fashion-MNIST subset, to rank training recipes in seconds before spending lavapipe's minutes
(BENCHMARKS.md, "What 91% on the embedded subset costs"). Each argument is one recipe, as
keyword arguments of run(): epochs, bs, lr, flip, pad (random shifts), w (stage widths),
stem_stride, wd, n (training images, the first n of the full set in $FULL, default
/usr/share/datasets/fashion-mnist, where n > the embedded 10,000; epochs may be fractional),
seeds (default 3; the mean is printed, with each seed's result and the
accuracy with flip test-time augmentation).

    /usr/bin/python3 tools/main_job_recipes.py "epochs=5" "epochs=12,flip=True,w=(32,64,128)"
"""
import os, gzip, sys, time, math, numpy as np, torch, torch.nn as nn, torch.nn.functional as F
torch.set_num_threads(int(os.environ.get("THREADS", 2)))
D = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'data', 'fashion-mnist') + '/'
M, S = 0.2860, 0.3530
def idx(d, f):
    b = gzip.open(d + f).read()
    nd = b[3]; dims = [int.from_bytes(b[4+4*i:8+4*i], 'big') for i in range(nd)]
    return np.frombuffer(b, np.uint8, offset=4+4*nd).reshape(dims)
def split(d, prefix):
    """A split's images (normalised, N x 1 x 28 x 28) and labels from the IDX files in d."""
    x = torch.tensor(idx(d, prefix + '-images-idx3-ubyte.gz'), dtype=torch.float32)[:, None] / 255
    return (x - M) / S, torch.tensor(idx(d, prefix + '-labels-idx1-ubyte.gz'), dtype=torch.long)
xtr, ytr = split(D, 'train')
xte, yte = split(D, 't10k')
# n > 10,000 training images come from the full set (its first 10,000 are the embedded ones)
FULL = os.environ.get('FULL', '/usr/share/datasets/fashion-mnist') + '/'
_full = None
def train_set(n):
    global _full
    if n <= len(xtr):
        return xtr[:n], ytr[:n]
    if _full is None:
        _full = split(FULL, 'train')
    return _full[0][:n], _full[1][:n]

class Block(nn.Module):
    def __init__(s, cin, cout, stride):
        super().__init__()
        s.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False); s.b1 = nn.BatchNorm2d(cout)
        s.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False); s.b2 = nn.BatchNorm2d(cout)
        nn.init.zeros_(s.b2.weight)
        s.short = None
        if stride != 1 or cin != cout:
            s.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
    def forward(s, x):
        a = F.relu(s.b1(s.c1(x))); a = s.b2(s.c2(a))
        return F.relu(a + (x if s.short is None else s.short(x)))
class Mini(nn.Module):
    def __init__(s, w=(16, 32, 64), stem_stride=2):
        super().__init__()
        s.stem = nn.Sequential(nn.Conv2d(1, w[0], 3, stem_stride, 1, bias=False), nn.BatchNorm2d(w[0]), nn.ReLU())
        layers, cin = [], w[0]
        for i, c in enumerate(w):
            layers.append(Block(cin, c, 1 if i == 0 else 2)); cin = c
        s.layers = nn.Sequential(*layers); s.fc = nn.Linear(cin, 10)
    def forward(s, x):
        return s.fc(F.adaptive_avg_pool2d(s.layers(s.stem(x)), 1).flatten(1))

def one_cycle(i, n, lr):
    pct = 0.25; w = int(n * pct)
    if i < w:
        t = i / max(w, 1); c = (1 - math.cos(math.pi * t)) / 2
        return lr / 25 + (lr - lr / 25) * c, 0.95 - 0.10 * c
    t = (i - w) / max(n - w, 1); c = (1 - math.cos(math.pi * t)) / 2
    return lr + (lr / 1e5 - lr) * c, 0.85 + 0.10 * c

def augment(x, flip, pad):
    if flip:
        m = torch.rand(x.shape[0]) < 0.5
        x = torch.where(m[:, None, None, None], x.flip(3), x)
    if pad:
        bg = -M / S
        xp = F.pad(x, (pad,) * 4, value=bg)
        out = torch.empty_like(x)
        dx = torch.randint(0, 2 * pad + 1, (x.shape[0],)); dy = torch.randint(0, 2 * pad + 1, (x.shape[0],))
        for k in range(x.shape[0]):
            out[k] = xp[k, :, dy[k]:dy[k] + 28, dx[k]:dx[k] + 28]
        x = out
    return x

def run(epochs=5, bs=64, lr=0.15, flip=False, pad=0, seed=0, w=(16, 32, 64), stem_stride=2, wd=5e-4,
        n=10000):
    xtr, ytr = train_set(n)
    torch.manual_seed(seed)
    m = Mini(w, stem_stride)
    opt = torch.optim.SGD(m.parameters(), lr=lr, momentum=0.9, weight_decay=wd)
    n = len(xtr); steps = int(epochs * (n // bs)); i = 0; t0 = time.time()
    m.train()
    while i < steps:
        perm = torch.randperm(n)
        for b in range(min(n // bs, steps - i)):
            ix = perm[b * bs:(b + 1) * bs]
            lr_i, mom = one_cycle(i, steps, lr)
            for g in opt.param_groups: g['lr'] = lr_i; g['momentum'] = mom
            x = augment(xtr[ix], flip, pad)
            loss = F.cross_entropy(m(x), ytr[ix], label_smoothing=0.1)
            opt.zero_grad(); loss.backward(); opt.step(); i += 1
    m.eval()
    with torch.no_grad():
        lo = m(xte); acc = (lo.argmax(1) == yte).float().mean().item()
        lt = lo.softmax(1) + m(xte.flip(3)).softmax(1); acc_tta = (lt.argmax(1) == yte).float().mean().item()
    return acc, acc_tta, time.time() - t0

if __name__ == '__main__':
    for spec in sys.argv[1:]:
        kw = eval('dict(' + spec + ')')
        seeds = kw.pop('seeds', 3)
        rs = [run(seed=s, **kw) for s in range(seeds)]
        a = sum(r[0] for r in rs) / seeds; at = sum(r[1] for r in rs) / seeds; t = sum(r[2] for r in rs) / seeds
        print(f'{spec:50s} acc {a*100:.2f}  flip-TTA {at*100:.2f}  ({" ".join(f"{r[0]*100:.1f}" for r in rs)})  {t:.0f} s/run', flush=True)
