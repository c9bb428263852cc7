#!/usr/bin/env bash
# The GPU path, checked in minutes (issue 22). On a CUDA machine (< 8 minutes on one GPU):
#   1. device and versions;
#   2. the pytorch/examples DCGAN loop (benchmarks/dcgan_loop.py, 300 steps, deterministic cuDNN) plain
#      twice, watched, watched with overlap=True, on cuda: bit-identical state, overhead ratio, peak GPU
#      memory with and without the hook;
#   3. benchmarks/attacks.py --quick --device cuda: float32, bf16, fp16 against raw torchattacks and
#      foolbox, and the agreement of bf16 and fp16 with float32 (benchmark D and the sample's D);
#   4. one run trained and watched on cuda, one audit and one sweep of its snapshots on cuda.
# Without a GPU it says so and exits 0. GPU_CHECK_DEVICE=cpu runs the same steps on the CPU with
# fewer steps (how this script was checked: no GPU was lent when it was written).
#
#   bash benchmarks/gpu_check.sh 2>&1 | tee benchmarks/results/gpu_check.txt
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && PY=.venv/bin/python
export GIT_PYTHON_REFRESH=quiet
DEVICE="${GPU_CHECK_DEVICE:-cuda}"
if [ "$DEVICE" = cuda ] && ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "gpu_check: no GPU found (torch.cuda.is_available() is False): nothing to check, exiting 0"
    exit 0
fi
if [ "$DEVICE" = cuda ]; then STEPS=300; SAMPLE=600; TRAIN=400; else STEPS=30; SAMPLE=50; TRAIN=40; fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
START=$(date +%s)
section() { echo; echo "== $1 ($(( $(date +%s) - START )) s)"; }

section "device and versions"
"$PY" - "$DEVICE" <<'PYEOF'
import sys, platform, torch
import ganrobust
device = torch.device(sys.argv[1])
print(f"python {platform.python_version()}, torch {torch.__version__}, ganrobust {ganrobust.__version__}, "
      f"cuda {torch.version.cuda}, cudnn {torch.backends.cudnn.version() if torch.cuda.is_available() else None}")
print(f"cpu capability {torch.backends.cpu.get_cpu_capability()}, {platform.processor() or platform.machine()}")
if device.type == "cuda":
    p = torch.cuda.get_device_properties(device)
    print(f"device {p.name}, compute capability {p.major}.{p.minor}, {p.total_memory / 2**30:.1f} GiB, "
          f"bf16 supported {torch.cuda.is_bf16_supported()}")
for name in ("torchattacks", "foolbox"):
    try:
        print(name, __import__(name).__version__)
    except Exception as err:  # the attacks benchmark says what is missing
        print(name, "not importable:", err)
PYEOF

section "DCGAN loop on $DEVICE: plain x2, watched, watched overlap=True ($STEPS steps)"
for v in plain plain2 watched overlap; do
    case $v in
        plain|plain2) extra=();;
        watched) extra=(--watch);;
        overlap) extra=(--watch --overlap on);;
    esac
    "$PY" benchmarks/dcgan_loop.py --device "$DEVICE" --steps "$STEPS" --deterministic "${extra[@]}" > "$WORK/$v.json"
done
"$PY" - "$WORK" <<'PYEOF'
import json, sys
runs = {v: json.loads(open(f"{sys.argv[1]}/{v}.json").read().splitlines()[-1])
        for v in ("plain", "plain2", "watched", "overlap")}
sha = {v: r["state_sha256"] for v, r in runs.items()}
print(f"plain runs bit-identical to each other: {sha['plain'] == sha['plain2']}")
print(f"watched bit-identical to plain: {sha['watched'] == sha['plain']}; overlap=True: {sha['overlap'] == sha['plain']}")
base = min(runs["plain"]["loop_s"], runs["plain2"]["loop_s"])
for v in ("watched", "overlap"):
    print(f"{v}: loop {runs[v]['loop_s']:.2f} s vs plain {base:.2f} s = {runs[v]['loop_s'] / base:.3f}x "
          f"({runs[v]['measured_steps']} measured steps; import ganrobust {runs[v]['import_ganrobust_s'] * 1e3:.0f} ms)")
for v, r in runs.items():
    if "peak_gpu_mib" in r:
        print(f"peak GPU memory {v}: {r['peak_gpu_mib']:.1f} MiB")
PYEOF

section "attacks on $DEVICE (benchmarks/attacks.py --quick)"
"$PY" benchmarks/attacks.py --quick --device "$DEVICE" --sample-steps "$SAMPLE"

section "one watched run, one audit and one sweep on $DEVICE"
"$PY" -m ganrobust.cli train --steps "$TRAIN" --every 10 --snapshot-every 20 --device "$DEVICE" --out "$WORK/run" > "$WORK/train.txt"
tail -n 3 "$WORK/train.txt"
"$PY" -m ganrobust.cli audit "$WORK/run" --device "$DEVICE" --n-probes 128 --out "$WORK/audit" --json > "$WORK/audit.json"
"$PY" -c "import json,sys; s=json.load(open(sys.argv[1])); print('audit summary:', {k: s[k] for k in list(s)[:6]})" "$WORK/audit.json"
"$PY" -m ganrobust.cli audit "$WORK/run" --snapshots all --device "$DEVICE" --n-probes 64 --out "$WORK/sweep" > "$WORK/sweep.txt"
tail -n 5 "$WORK/sweep.txt"
section "done on $DEVICE"
