#!/usr/bin/env bash
# The gateway load benchmark: one fixed-answer upstream (`hive-load upstream`), measured
# directly, through hive (`hive serve`, the normal stack) and through LiteLLM's proxy, under
# the same load, printed side by side:
#
#   - added latency at concurrency 1: an open loop at RATE req/s on one keep-alive connection
#     (latency counted from each request's scheduled time: no coordinated omission), whole
#     answers and streams (time to the first byte of the body), through minus direct at
#     p50, p99 and p99.9;
#   - throughput: a closed loop of CONCURRENCY connections, requests/s, and the CPU time
#     per request of the proxy's processes (and of the upstream), from /proc/PID/stat.
#
# The load generator is `hive-load run` (benches/src/bin/hive-load.rs); the proxies not under
# measurement are paused (SIGSTOP) meanwhile. Every process started here is stopped on exit.
#
# Usage: benches/load/run.sh            (from anywhere; builds the release binaries first)
#
# Environment, with defaults:
#   RATE=1000            open-loop rate of the latency runs, req/s
#   LITELLM_RATE=auto    LiteLLM's open-loop rate; auto: a quarter of what it answers back
#                        to back (its latency is milliseconds: 1000/s would only queue)
#   DURATION=20s WARMUP=3s                 each latency run (after its warm-up)
#   B2B_DURATION=5s      each back-to-back run (closed loop, one connection: the latency
#                        without the wake-ups of an idle machine that the open loop pays)
#   CONCURRENCY=64 TP_DURATION=10s TP_WARMUP=2s   each throughput run
#   LATENCY_CPU          pin the latency runs (every process, the load generator too) to
#                        this CPU, e.g. 0: no wake-ups across CPUs, which cost tens of µs
#                        each on some VMs; the throughput runs use every CPU
#   LOAD_THREADS=1       runtime threads of the closed-loop load generator
#   UPSTREAM_PORT=18100 HIVE_PORT=18101 LITELLM_PORT=18102
#   HIVE_LOG             hive's log filter (its default, info, logs every request; the log
#                        goes to a file)
#   LITELLM_VENV         a venv holding `litellm[proxy]` to reuse; otherwise one is made
#                        (python3 -m venv) in ~/.cache/hive-resilience/litellm-venv
#   HIVE_WORKERS=auto    hive's data-plane workers (`hive serve --workers`: auto is one
#                        per core; 0 serves on its shared multi-threaded runtime)
#   LITELLM_WORKERS=1    LiteLLM's --num_workers
#   SKIP_LITELLM=1       measure direct and hive only
#   RESULTS=DIR          keep every run's JSON there (default: a temporary directory)
#   CARGO_TARGET_DIR     where cargo builds (default: the workspace's target/)
#   SKIP_BUILD=1         use the release binaries already built there
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here="$root/benches/load"

RATE=${RATE:-1000}
LITELLM_RATE=${LITELLM_RATE:-auto}
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-3s}
B2B_DURATION=${B2B_DURATION:-5s}
CONCURRENCY=${CONCURRENCY:-64}
TP_DURATION=${TP_DURATION:-10s}
TP_WARMUP=${TP_WARMUP:-2s}
LOAD_THREADS=${LOAD_THREADS:-1}
UPSTREAM_PORT=${UPSTREAM_PORT:-18100}
HIVE_PORT=${HIVE_PORT:-18101}
LITELLM_PORT=${LITELLM_PORT:-18102}
LITELLM_WORKERS=${LITELLM_WORKERS:-1}
venv=${LITELLM_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/hive-resilience/litellm-venv}

say() { printf '\n=== %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

for tool in curl python3 pgrep setsid getconf; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is needed"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/hive-load.XXXXXX")
results=${RESULTS:-$work/results}
mkdir -p "$results"

# Every process this script starts leads its own session (setsid), so that it and its
# children (LiteLLM's workers) are stopped together, and its CPU time is read together.
pids=()
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do
        kill -CONT -- "-$pid" 2>/dev/null || true
        kill -TERM -- "-$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL -- "-$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    if [ -z "${RESULTS:-}" ]; then
        rm -rf "$work"
    else
        echo "logs and configs: $work (results in $results)" >&2
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start() { # NAME LOG COMMAND…: starts COMMAND in its own session; its pid is in $started
    local name=$1 log=$2
    shift 2
    setsid "$@" >"$log" 2>&1 </dev/null &
    started=$!
    pids+=("$started")
    echo "$name: pid $started, log $log" >&2
}

wait_ready() { # NAME PID URL SECONDS LOG
    local name=$1 pid=$2 url=$3 seconds=$4 log=$5
    local deadline=$((SECONDS + seconds))
    until curl -sf -o /dev/null "$url"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$log" >&2
            die "$name exited before it was ready (log above)"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            tail -n 30 "$log" >&2
            die "$name was not ready at $url after ${seconds}s (log above)"
        fi
        sleep 0.2
    done
}

check_answer() { # NAME URL MODEL: one request, whole, must answer
    local name=$1 url=$2 model=$3
    local answer
    answer=$(curl -sf -X POST "$url/v1/chat/completions" -H 'content-type: application/json' \
        -H "authorization: Bearer $key" \
        -d "{\"model\": \"$model\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}") ||
        die "$name did not answer a chat completion at $url"
    case $answer in
        *"Yes, I approve."*) ;;
        *) die "$name answered something else: $answer" ;;
    esac
}

cpu_ticks() { # SESSION: utime + stime, in clock ticks, of every process in the session
    local total=0 pid ticks
    for pid in $(pgrep -s "$1"); do
        ticks=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $12 + $13}') || true
        total=$((total + ${ticks:-0}))
    done
    echo "$total"
}

say "machine"
echo "$(nproc) cores; $(uptime)" >&2
echo "command: RATE=$RATE DURATION=$DURATION WARMUP=$WARMUP CONCURRENCY=$CONCURRENCY TP_DURATION=$TP_DURATION $0" >&2

bin="${CARGO_TARGET_DIR:-$root/target}/release"
if [ "${SKIP_BUILD:-0}" = 1 ]; then
    say "release binaries in $bin (SKIP_BUILD=1: not rebuilt)"
else
    say "build (release): hive, hive-load"
    command -v cargo >/dev/null 2>&1 || die "cargo is needed (or SKIP_BUILD=1 with built binaries)"
    (cd "$root" && cargo build --release -p hive-gateway --bin hive -p hive-benches --bin hive-load) >&2
fi
[ -x "$bin/hive" ] && [ -x "$bin/hive-load" ] || die "no release binaries in $bin"
load="$bin/hive-load"

# Both proxies authenticate their clients with this key (LiteLLM refuses to start without
# one); every target, the upstream included, is sent the same request with it.
key="sk-hive-load-$RANDOM$RANDOM$RANDOM"
export HIVE_LOAD_KEY=$key LITELLM_MASTER_KEY=$key

say "start the upstream, hive and LiteLLM"
start upstream "$work/upstream.log" "$load" upstream --listen "127.0.0.1:$UPSTREAM_PORT" --model bench
upstream_pid=$started
wait_ready upstream "$upstream_pid" "http://127.0.0.1:$UPSTREAM_PORT/v1/models" 10 "$work/upstream.log"

mkdir -p "$work/hive"
for file in resilience.yml models-resilience.yml; do
    sed -e "s/127\.0\.0\.1:18100/127.0.0.1:$UPSTREAM_PORT/; s/127\.0\.0\.1:18101/127.0.0.1:$HIVE_PORT/" \
        "$here/hive/$file" >"$work/hive/$file"
done
"$bin/hive" check-config "$work/hive" >/dev/null || die "hive's bench config is refused"
start hive "$work/hive.log" "$bin/hive" serve --config "$work/hive" --workers "${HIVE_WORKERS:-auto}"
hive_pid=$started
wait_ready hive "$hive_pid" "http://127.0.0.1:$HIVE_PORT/readyz" 30 "$work/hive.log"
check_answer hive "http://127.0.0.1:$HIVE_PORT" chat

litellm_pid=""
if [ "${SKIP_LITELLM:-0}" = 1 ]; then
    echo "LiteLLM skipped: SKIP_LITELLM=1" >&2
else
    if [ ! -x "$venv/bin/litellm" ]; then
        echo "installing litellm[proxy] into $venv" >&2
        if ! { python3 -m venv "$venv" && "$venv/bin/pip" install --quiet 'litellm[proxy]'; } >&2; then
            echo "LiteLLM skipped: could not install litellm[proxy] into $venv (offline?); set LITELLM_VENV to a venv that has it" >&2
        fi
    fi
    if [ -x "$venv/bin/litellm" ]; then
        sed -e "s/127\.0\.0\.1:18100/127.0.0.1:$UPSTREAM_PORT/" "$here/litellm.yaml" >"$work/litellm.yaml"
        # The local cost map: no download at start (which fails, slowly, offline).
        start litellm "$work/litellm.log" env LITELLM_LOCAL_MODEL_COST_MAP=True \
            "$venv/bin/litellm" --config "$work/litellm.yaml" --host 127.0.0.1 \
            --port "$LITELLM_PORT" --num_workers "$LITELLM_WORKERS"
        litellm_pid=$started
        wait_ready litellm "$litellm_pid" "http://127.0.0.1:$LITELLM_PORT/health/liveliness" 180 "$work/litellm.log"
        check_answer litellm "http://127.0.0.1:$LITELLM_PORT" chat
        echo "litellm: $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("litellm"))')" >&2
    fi
fi

# name, URL, model asked for
targets=("direct http://127.0.0.1:$UPSTREAM_PORT bench" "hive http://127.0.0.1:$HIVE_PORT chat")
[ -n "$litellm_pid" ] && targets+=("litellm http://127.0.0.1:$LITELLM_PORT chat")

pin=()
pin_all() { # CPUS: every thread of every process started here
    local leader pid
    for leader in "${pids[@]}"; do
        for pid in $(pgrep -s "$leader"); do
            taskset -a -pc "$1" "$pid" >/dev/null || die "taskset could not pin $pid to $1"
        done
    done
}

# The proxies not under measurement are paused (SIGSTOP) meanwhile, so that their own timers
# and background tasks (LiteLLM's especially) do not disturb the target measured.
pause_others() { # NAME: pauses every proxy but NAME's
    [ "$1" = hive ] || kill -STOP -- "-$hive_pid"
    [ -z "$litellm_pid" ] || [ "$1" = litellm ] || kill -STOP -- "-$litellm_pid"
}
resume_all() {
    kill -CONT -- "-$hive_pid"
    [ -z "$litellm_pid" ] || kill -CONT -- "-$litellm_pid"
}

run_load() { # NAME URL MODEL OUT ARGS…
    local name=$1 url=$2 model=$3 out=$4
    shift 4
    local status=0
    pause_others "$name"
    ${pin[@]+"${pin[@]}"} "$load" run "$url" --model "$model" --label "$name" --json \
        -H "authorization: Bearer $key" "$@" >"$out" || status=$?
    resume_all
    [ "$status" = 0 ] || die "hive-load failed against $name"
}

rate_of() { # NAME URL MODEL: the open-loop rate for this target
    local name=$1 url=$2 model=$3
    if [ "$name" != litellm ] || [ "$LITELLM_RATE" != auto ]; then
        [ "$name" = litellm ] && echo "$LITELLM_RATE" || echo "$RATE"
        return
    fi
    run_load "$name" "$url" "$model" "$work/probe.json" --concurrency 1 --duration 3s --warmup 1s
    python3 - "$work/probe.json" "$RATE" <<'EOF'
import json, math, sys
r = json.load(open(sys.argv[1]))
p50 = (r.get("latency") or {}).get("p50_us") or 1e6
print(max(1, min(float(sys.argv[2]), math.floor(0.25e6 / p50))))
EOF
}

if [ -n "${LATENCY_CPU:-}" ]; then
    command -v taskset >/dev/null 2>&1 || die "LATENCY_CPU needs taskset (util-linux)"
    say "the latency runs are pinned to CPU $LATENCY_CPU (LATENCY_CPU)"
    pin_all "$LATENCY_CPU"
    pin=(taskset -c "$LATENCY_CPU")
fi

say "latency at concurrency 1 (open loop), whole and streamed"
for entry in "${targets[@]}"; do
    read -r name url model <<<"$entry"
    rate=$(rate_of "$name" "$url" "$model")
    for kind in whole stream; do
        flag=()
        [ "$kind" = stream ] && flag=(--stream)
        echo "$name, $kind: $rate req/s for $DURATION" >&2
        run_load "$name" "$url" "$model" "$results/$name-$kind.json" \
            --rate "$rate" --duration "$DURATION" --warmup "$WARMUP" ${flag[@]+"${flag[@]}"}
    done
done

say "latency back to back (closed loop, one connection), whole: no idle wake-ups"
for entry in "${targets[@]}"; do
    read -r name url model <<<"$entry"
    echo "$name: back to back for $B2B_DURATION" >&2
    run_load "$name" "$url" "$model" "$results/$name-b2b.json" --concurrency 1 \
        --duration "$B2B_DURATION" --warmup 1s
done

if [ -n "${LATENCY_CPU:-}" ]; then
    pin_all "0-$(($(nproc) - 1))"
    pin=()
fi

say "throughput at concurrency $CONCURRENCY (closed loop), whole"
tck=$(getconf CLK_TCK)
for entry in "${targets[@]}"; do
    read -r name url model <<<"$entry"
    case $name in
        hive) proxy=$hive_pid ;;
        litellm) proxy=$litellm_pid ;;
        *) proxy="" ;;
    esac
    echo "$name: $CONCURRENCY connections for $TP_DURATION" >&2
    up0=$(cpu_ticks "$upstream_pid")
    px0=0
    [ -n "$proxy" ] && px0=$(cpu_ticks "$proxy")
    run_load "$name" "$url" "$model" "$results/$name-throughput.json" --concurrency "$CONCURRENCY" \
        --threads "$LOAD_THREADS" --duration "$TP_DURATION" --warmup "$TP_WARMUP"
    up1=$(cpu_ticks "$upstream_pid")
    px1=0
    [ -n "$proxy" ] && px1=$(cpu_ticks "$proxy")
    echo "{\"clk_tck\": $tck, \"upstream_ticks\": $((up1 - up0)), \"proxy_ticks\": $((px1 - px0))}" \
        >"$results/$name-cpu.json"
done

say "results ($(nproc) cores; $(uptime | sed 's/.*load/load/'))${LATENCY_CPU:+; latency runs pinned to CPU $LATENCY_CPU}"
python3 - "$results" "${targets[@]}" <<'EOF'
import json, os, sys

results, targets = sys.argv[1], [t.split()[0] for t in sys.argv[2:]]

def load(name, kind):
    path = os.path.join(results, f"{name}-{kind}.json")
    return json.load(open(path)) if os.path.exists(path) else None

def fmt(us):
    if us is None:
        return "-"
    if abs(us) >= 1000:
        return f"{us / 1000:.2f} ms"
    return f"{us:.1f} µs"

def added(us):
    if us is None:
        return ""
    return ("+" if us >= 0 else "-") + fmt(abs(us))

width = 26
print()
print("Latency at concurrency 1: open loop, one keep-alive connection (back to back: closed loop);")
print("added = through minus direct, percentile by percentile")
print(f"{'':<28}" + "".join(f"{t:>{width}}" for t in targets))
for kind, field, title in [
    ("whole", "latency", "whole answer"),
    ("b2b", "latency", "back to back, whole"),
    ("stream", "first_byte", "stream, first byte"),
    ("stream", "latency", "stream, to the end"),
]:
    base = load("direct", kind)
    for pct, key in [("p50", "p50_us"), ("p99", "p99_us"), ("p99.9", "p999_us")]:
        cells = []
        for t in targets:
            r = load(t, kind)
            s = (r or {}).get(field) or {}
            v = s.get(key)
            if t == "direct" or v is None:
                cells.append(fmt(v))
            else:
                b = ((base or {}).get(field) or {}).get(key)
                cells.append(f"{fmt(v)} ({added(v - b if b is not None else None)})")
        print(f"{title + ' ' + pct:<28}" + "".join(f"{c:>{width}}" for c in cells))
for kind in ["whole", "stream", "b2b"]:
    cells = []
    for t in targets:
        r = load(t, kind) or {}
        miss = r.get("missed") or 0
        rate = f"{r.get('rate')}/s" if r.get("rate") else "c=1"
        cells.append(f"{rate} n={r.get('ok')} err={r.get('errors', 0) + miss}")
    print(f"{kind + ' rate, samples':<28}" + "".join(f"{c:>{width}}" for c in cells))
    if kind != "b2b":
        lags = [fmt(((load(t, kind) or {}).get("send_lag") or {}).get("p99_us")) for t in targets]
        print(f"{kind + ' client send lag p99':<28}" + "".join(f"{c:>{width}}" for c in lags))

print()
print("Throughput: closed loop, whole answers; CPU time per request from /proc/PID/stat (warm-up included)")
print(f"{'':<28}" + "".join(f"{t:>{width}}" for t in targets))
rows = {"requests/s": [], "errors": [], "p50 / p99": [], "proxy CPU per request": [],
        "upstream CPU per request": [], "proxy cores busy": []}
for t in targets:
    r = load(t, "throughput") or {}
    cpu = load(t, "cpu") or {}
    n = r.get("all_requests") or 0
    tck = cpu.get("clk_tck", 100)
    seconds = r.get("duration_s", 0) + r.get("warmup_s", 0)
    lat = r.get("latency") or {}
    rows["requests/s"].append(f"{r.get('rps', 0):,.0f}")
    rows["errors"].append(str(r.get("errors", "-")))
    rows["p50 / p99"].append(f"{fmt(lat.get('p50_us'))} / {fmt(lat.get('p99_us'))}")
    px = cpu.get("proxy_ticks", 0) / tck
    up = cpu.get("upstream_ticks", 0) / tck
    rows["proxy CPU per request"].append(fmt(px / n * 1e6) if n and t != "direct" else "-")
    rows["upstream CPU per request"].append(fmt(up / n * 1e6) if n else "-")
    rows["proxy cores busy"].append(f"{px / seconds:.2f}" if seconds and t != "direct" else "-")
for name, cells in rows.items():
    print(f"{name:<28}" + "".join(f"{c:>{width}}" for c in cells))
print()
EOF
