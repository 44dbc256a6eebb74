#!/usr/bin/env python3
"""bench/gpu/run.py BUILD [DATA] — `make bench-gpu`, on the GPU machine: convnet --device cuda beside
PyTorch (eager, and the whole step in one CUDA graph) on the nets of the issue's anchors, the same
settings, in one run; images/s and ratios, a compact table printed last, the raw numbers in
$OUT/bench_gpu.json (or bench/out/). Then the time to accuracy: models/fmnist-fast.cnn trained on
Fashion-MNIST (DATA, default Debian's copy) by the recipe on its `# recipe:` line, --device cuda;
the training time is the sum of metrics.csv's epoch seconds. The PyTorch code is shared/anchors/gpu_torch_*.py's, kept here so
that the repository is self-contained.

convnet's numbers come from `convnet bench --device cuda --json` (random inputs kept in the GPU's
memory, SGD momentum, 3 warm-up steps, then at least --seconds): the host prepares nothing per
step but the labels' one-hot rows, as PyTorch's synthetic loops keep their batch on the GPU."""
import csv, json, os, re, subprocess, sys, tempfile, time

BUILD = sys.argv[1] if len(sys.argv) > 1 else 'build'
DATA = sys.argv[2] if len(sys.argv) > 2 else '/usr/share/datasets/fashion-mnist'
CN = os.path.join(BUILD, 'convnet')
# a build carried from another machine brings the libraries it was linked with (prepare.sh):
# convnet's runs below find them first (PyTorch, in this process, is not affected)
if os.path.isdir(os.path.join(BUILD, 'lib')):
    os.environ['LD_LIBRARY_PATH'] = os.path.join(BUILD, 'lib') + (':' + os.environ['LD_LIBRARY_PATH']
                                                                  if os.environ.get('LD_LIBRARY_PATH') else '')
OUT = os.environ.get('OUT') or 'bench/out'
SECONDS = float(os.environ.get('CN_BENCH_SECONDS', '1.5'))
rows, raw = [], {}
# device.sh gives the whole run 260 s: each command gets what is left of CN_BENCH_DEADLINE (a
# layer that fell back to the direct kernels can take minutes a step), so that the table prints
START, DEADLINE = time.time(), float(os.environ.get('CN_BENCH_DEADLINE', '245'))


def time_left(most):
    """seconds a command may take now (at most `most`), or None when the deadline has passed"""
    left = DEADLINE - (time.time() - START)
    return min(most, left) if left > 5 else None


def convnet(model, batch, precision='fp32', mode='--train', env=None, tag=''):
    cmd = [CN, 'bench', model, '--batch', str(batch), mode, '--seconds', str(SECONDS), '--device', 'cuda',
           '--precision', precision, '--json']
    limit = time_left(90)
    if limit is None:
        print('SKIPPED (deadline)', ' '.join(cmd), flush=True)
        return None
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        print('TIMEOUT', ' '.join(cmd), flush=True)
        return None
    if r.returncode:
        print('FAILED', ' '.join(cmd), r.stderr.strip()[-500:], flush=True)
        return None
    d = json.loads(r.stdout)
    raw[f'convnet {model} b{batch} {precision}{tag}'] = d
    slow = sorted(d['layers'], key=lambda l: -(l['forward_ms'] + l['backward_ms']))[:3]
    print(f"convnet {model} batch {batch} {precision}{tag}: {d['images_per_s']:.0f} images/s, {d['ms_per_step']:.3f} ms/step"
          f"{', one CUDA graph a step' if d.get('graph') else ', steps not recorded'}"
          f"{', in flight' if d.get('in_flight') else ', one at a time'}; "
          'slowest layers ' + ', '.join(f"{l['name']} {l['forward_ms'] + l['backward_ms']:.3f} ms ({l.get('kernel', '')})"
                                        for l in slow),
          flush=True)
    return d['images_per_s']


try:
    import torch, torch.nn as nn, torch.nn.functional as F
    torch.backends.cudnn.benchmark = True
    HAVE_TORCH = torch.cuda.is_available()
except Exception as e:  # noqa: BLE001 - any import failure: convnet alone
    print('no PyTorch with CUDA here:', e)
    HAVE_TORCH = False


def small():
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(),
                         nn.Linear(128, 10))


def r18():
    import torchvision
    m = torchvision.models.resnet18(num_classes=10)
    m.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    m.maxpool = nn.Identity()
    return m


def torch_rate(mk, shape, bs, amp, cl, graph, iters):
    """images/s of SGD-momentum training steps on random data, the median of 3 timed runs"""
    torch.manual_seed(0)
    m = mk().cuda()
    if cl:
        m = m.to(memory_format=torch.channels_last)
    o = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(bs, *shape, device='cuda')
    y = torch.randint(0, 10, (bs,), device='cuda')
    if cl:
        x = x.contiguous(memory_format=torch.channels_last)

    def step():
        o.zero_grad(set_to_none=True)
        with torch.autocast('cuda', torch.bfloat16, enabled=amp):
            loss = F.cross_entropy(m(x), y)
        loss.backward()
        o.step()

    if graph:
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(5):
                step()
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        o.zero_grad(set_to_none=True)
        with torch.cuda.graph(g):
            with torch.autocast('cuda', torch.bfloat16, enabled=amp):
                sl = F.cross_entropy(m(x), y)
            sl.backward()
            o.step()
        run = g.replay
    else:
        run = step
    for _ in range(15):
        run()
    torch.cuda.synchronize()
    ts = []
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(iters):
            run()
        torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    return iters * bs / sorted(ts)[1]


def torch_case(label, *args):
    if not HAVE_TORCH:
        return None
    try:
        v = torch_rate(*args)
    except Exception as e:  # noqa: BLE001 - a failed variant is reported, the rest goes on
        print('torch', label, 'failed:', str(e)[:300], flush=True)
        return None
    raw['torch ' + label] = v
    print(f'torch {label}: {v:.0f} images/s', flush=True)
    return v


def row(name, ours, theirs, target=None):
    ratio = ours / theirs if ours and theirs else None
    rows.append((name, ours, theirs, ratio, target))


if HAVE_TORCH:
    print('GPU:', torch.cuda.get_device_name(0), '| torch', torch.__version__, '| cuDNN', torch.backends.cudnn.version(),
          flush=True)
# fmnist-small: batch 64 (against eager, and the graph), 256 and 1024 (against the graph)
small_shape = (1, 28, 28)
for bs in (64, 256, 1024):
    graph = torch_case(f'small b{bs} fp32 graph', small, small_shape, bs, False, False, True, 300)
    for prec in ('fp32', 'tf32'):
        ours = convnet('models/fmnist-small.cnn', bs, prec)
        row(f'fmnist-small b{bs} {prec} vs torch fp32 graph', ours, graph, '>= 2x at b256' if bs == 256 else None)
        if bs == 64 and prec == 'fp32':
            eager = torch_case('small b64 fp32 eager', small, small_shape, 64, False, False, False, 200)
            row('fmnist-small b64 fp32 vs torch fp32 eager', ours, eager, '>= 5x')
# what steps in flight gain: the same net one step at a time (a wait per step), in this run
for bs in (64, 256):
    row(f'fmnist-small b{bs} fp32 in flight vs CN_FLIGHT=0',
        raw.get(f'convnet models/fmnist-small.cnn b{bs} fp32', {}).get('images_per_s'),
        convnet('models/fmnist-small.cnn', bs, 'fp32', env={'CN_FLIGHT': '0'}, tag=' CN_FLIGHT=0'))
bf16 = torch_case('small b256 bf16 channels_last graph', small, small_shape, 256, True, True, True, 300)
row('fmnist-small b256 bf16 vs torch bf16 graph', convnet('models/fmnist-small.cnn', 256, 'bf16'), bf16, '>= 2x')
# what storing the activations as bf16 gains over staging each product's operands alone
row('fmnist-small b256 bf16 vs CN_BF16_STORAGE=0', raw.get('convnet models/fmnist-small.cnn b256 bf16', {}).get('images_per_s'),
    convnet('models/fmnist-small.cnn', 256, 'bf16', env={'CN_BF16_STORAGE': '0'}, tag=' CN_BF16_STORAGE=0'))


def resnet_rows():
    """ResNet-18, 3x3 stem, 32x32, batch 512 (after the time to accuracy: the heaviest runs last)"""
    ours32 = convnet('models/resnet18-cifar.cnn', 512, 'fp32')
    ours_tf = convnet('models/resnet18-cifar.cnn', 512, 'tf32')
    t32 = torch_case('resnet18 b512 fp32 eager', r18, (3, 32, 32), 512, False, False, False, 30)
    tbf = torch_case('resnet18 b512 bf16 channels_last eager', r18, (3, 32, 32), 512, True, True, False, 30)
    row('resnet18-cifar b512 fp32 vs torch fp32', ours32, t32)
    row('resnet18-cifar b512 tf32 vs torch bf16 cl', ours_tf, tbf)
    row('resnet18-cifar b512 bf16 vs torch bf16 cl', convnet('models/resnet18-cifar.cnn', 512, 'bf16'), tbf, '>= 1.2x')
    row('resnet18-cifar b512 bf16 vs CN_BF16_STORAGE=0',
        raw.get('convnet models/resnet18-cifar.cnn b512 bf16', {}).get('images_per_s'),
        convnet('models/resnet18-cifar.cnn', 512, 'bf16', env={'CN_BF16_STORAGE': '0'}, tag=' CN_BF16_STORAGE=0'))
    # cuDNN's algorithms timed, as PyTorch's anchors (cudnn.benchmark) have them
    row('resnet18-cifar b512 bf16 CN_CUDNN_FIND=1 vs torch bf16 cl',
        convnet('models/resnet18-cifar.cnn', 512, 'bf16', env={'CN_CUDNN_FIND': '1'}, tag=' CN_CUDNN_FIND=1'), tbf)



def time_to_accuracy(spec='models/fmnist-fast.cnn', recipe=None, precision='tf32'):
    """(test accuracy, training seconds, (the recipe's --tta, test accuracy with it) or None) of spec
    trained on the GPU by recipe (default: its '# recipe:' line, in precision unless it names one),
    or None"""
    if recipe is None:
        try:
            recipe = next(l.split(':', 1)[1].split() for l in open(spec) if l.startswith('# recipe:'))
        except (OSError, StopIteration):
            print('time to accuracy: no', spec, 'with a "# recipe:" line', flush=True)
            return None
        if '--precision' not in recipe:
            recipe += ['--precision', precision]
    out = os.path.join(tempfile.mkdtemp(), 'run')
    cmd = [CN, 'train', spec, *recipe, '--data', DATA, '--out', out, '--device', 'cuda']
    limit = time_left(120)
    if limit is None:
        print('SKIPPED (deadline)', ' '.join(cmd), flush=True)
        return None
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        print('TIMEOUT', ' '.join(cmd), flush=True)
        return None
    m = re.search(r'test accuracy ([0-9.]+)%', r.stdout)
    if r.returncode or not m:
        print('FAILED', ' '.join(cmd), (r.stdout + r.stderr).strip()[-500:], flush=True)
        return None
    rows_ = list(csv.DictReader(open(os.path.join(out, 'metrics.csv'))))
    secs = sum(float(x['seconds']) for x in rows_)
    views = re.search(r'test accuracy [0-9.]+%, ([0-9.]+)% with --tta ([a-z-]+)', r.stdout)
    views = (views.group(2), float(views.group(1))) if views else None
    raw['time to accuracy ' + ' '.join(recipe)] = {'command': ' '.join(cmd), 'test_accuracy': float(m.group(1)), 'seconds': secs,
                               'epochs': len(rows_), 'tta': views[0] if views else 'none',
                               'test_accuracy_tta': views[1] if views else None}
    print(f"convnet {spec} time to accuracy: {m.group(1)}% test" + (f" ({views[1]:.2f}% with --tta {views[0]})" if views else "")
          + f" after {len(rows_)} epochs, {secs:.2f} s of training ({' '.join(recipe)})", flush=True)
    return float(m.group(1)), secs, views


# the anchors' eager run: fmnist-small, the default recipe (10 epochs, batch 64), data on the GPU
small_run = time_to_accuracy('models/fmnist-small.cnn', ['--epochs', '10', '--batch', '64', '--val', '0'])
tta = time_to_accuracy()
tta_bf16 = time_to_accuracy(precision='bf16')
resnet_rows()
os.makedirs(OUT, exist_ok=True)
json.dump({'rows': rows, 'raw': raw}, open(os.path.join(OUT, 'bench_gpu.json'), 'w'), indent=1)
print('\n%-58s %12s %12s %7s  %s' % ('bench-gpu: training images/s', 'convnet', 'pytorch', 'ratio', 'target'))
for name, ours, theirs, ratio, target in rows:
    f = lambda v: '%12.0f' % v if v else '%12s' % '-'  # noqa: E731
    print('%-58s %s %s %7s  %s' % (name, f(ours), f(theirs), '%.2fx' % ratio if ratio else '-', target or ''))
if small_run:
    print('%-58s %11.2fs %11.1fs %7s  %s' % (f'fmnist-small 10 epochs b64: {small_run[0]:.2f}% (torch 93.31%)', small_run[1],
                                             19.4, '%.2fx' % (19.4 / small_run[1]) if small_run[1] else '-', ''))
for t, prec in ((tta, 'tf32'), (tta_bf16, 'bf16')):
    if t:
        views = f', {t[2][1]:.2f}% {t[2][0]}' if t[2] else ''
        print('%-58s %11.2fs %11.1fs %7s  %s' % (f'time to {t[0]:.2f}% test{views} (fmnist-fast, {prec})', t[1], 11.2,
                                                 '%.2fx' % (11.2 / t[1]) if t[1] else '-', '>= 94% in <= 3 s'))
