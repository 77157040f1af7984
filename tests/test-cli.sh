#!/usr/bin/env bash
# gouache-cli as a user runs it: reference checks, a generated PNG and its settings, and the
# one-line errors of bad input. Prints TAP.
#   test-cli.sh GOUACHE_CLI TINY_MODEL TEST_DATA_DIR TINY_SD2_MODEL TINY_SDXL_MODEL
set -u
cli=$1 tiny=$2 data=$3 tiny2=$4 tinyxl=$5
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
n=0 failed=0

ok () { n=$((n + 1)); echo "ok $n - $1"; }
not_ok () { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
check () { if eval "$2"; then ok "$1"; else not_ok "$1"; fi; }

# One line on stderr, exit status 1, and the line mentions what went wrong.
expect_error () {
  local name=$1 pattern=$2; shift 2
  "$@" >"$work/out" 2>"$work/err"
  local status=$?
  if [ "$status" -eq 1 ] && [ "$(wc -l <"$work/err")" -eq 1 ] && grep -qi -- "$pattern" "$work/err"; then
    ok "$name"
  else
    not_ok "$name (status $status)"; sed 's/^/# /' "$work/err"
  fi
}

# --- reference checks through the same code users run ---
"$cli" verify --model "$tiny" --reference "$data/ref_tiny.safetensors" >"$work/verify" 2>&1
status=$?
check "verify ref_tiny: tokenizer and text cases pass" \
  "grep -q '^PASS  tokenizer.ids' '$work/verify' && grep -q '^PASS  text.last_hidden' '$work/verify' && grep -q '^PASS  text.penultimate_normed' '$work/verify'"
check "verify ref_tiny: every unet, vae and pipe case passes" \
  "! grep -E '^FAIL' '$work/verify' | grep -qE ' (unet|vae|pipe)\\.' && grep -q '^PASS  unet.eps_rect_t500' '$work/verify' && grep -q '^PASS  vae.decoded' '$work/verify' && grep -q '^PASS  pipe.img2img_ddim.latents' '$work/verify'"
check "verify ref_tiny: summary line and exit status agree" \
  "tail -n 1 '$work/verify' | grep -qE '^[0-9]+ passed, 0 failed$' && [ $status -eq 0 ]"
grep -E '^(FAIL|SKIP)' "$work/verify" | sed 's/^/# /'

"$cli" verify --model "$tiny" --reference "$data/ref_tiny_rng.safetensors" >"$work/verify-rng" 2>&1
status=$?
check "verify ref_tiny_rng: torch randn and the samplers' noise order reproduce" \
  "[ $status -eq 0 ] && tail -n 1 '$work/verify-rng' | grep -qE '^1[0-9] passed, 0 failed$'"
grep -E '^(FAIL|SKIP)' "$work/verify-rng" | sed 's/^/# /'

"$cli" verify --model "$tiny" --reference "$data/ref_tiny.safetensors" --cases tokenizer,text >"$work/verify-some" 2>&1
check "verify --cases runs only the selected prefixes" \
  "tail -n 1 '$work/verify-some' | grep -q '^3 passed, 0 failed$'"

"$cli" verify --model "$tiny2" --reference "$data/ref_tiny2.safetensors" >"$work/verify-sd2" 2>&1
status=$?
check "verify ref_tiny2 (SD 2.x: OpenCLIP, v-prediction): every case passes" \
  "[ $status -eq 0 ] && tail -n 1 '$work/verify-sd2' | grep -qE '^1[0-9] passed, 0 failed$'"
grep -E '^(FAIL|SKIP)' "$work/verify-sd2" | sed 's/^/# /'

"$cli" inspect --model "$tiny2" >"$work/inspect-sd2" 2>&1
check "inspect reads the family and prediction type from the weights" \
  "grep -q 'SD 2.x' '$work/inspect-sd2' && grep -q 'OpenCLIP' '$work/inspect-sd2' && grep -q '^prediction' '$work/inspect-sd2'"

"$cli" verify --model "$tinyxl" --reference "$data/ref_tinyxl.safetensors" >"$work/verify-xl" 2>&1
status=$?
check "verify ref_tinyxl (SDXL: two encoders, pooled text, size conditioning): every case passes" \
  "[ $status -eq 0 ] && tail -n 1 '$work/verify-xl' | grep -qE '^1[0-9] passed, 0 failed$' && ! grep -q '^SKIP' '$work/verify-xl'"
grep -E '^(FAIL|SKIP)' "$work/verify-xl" | sed 's/^/# /'

# --- a generated image carries its settings ---
"$cli" generate --model "$tiny" --prompt "a (red:1.2) lighthouse, watercolor" --negative "blurry, text" \
  --sampler dpmpp_2m --schedule karras --steps 3 --cfg 6.5 --seed 1234 --width 128 --height 64 \
  --output "$work/out.png" >"$work/gen-out" 2>"$work/gen-err"
check "generate writes the PNG it names" "[ -s '$work/out.png' ] && grep -qx '$work/out.png' '$work/gen-out'"
check "the PNG is a 128x64 image" \
  "head -c 24 '$work/out.png' | tail -c 8 | od -An -tx1 | tr -d ' \\n' | grep -qx '0000008000000040'"
for field in "a (red:1.2) lighthouse, watercolor" "Negative prompt: blurry, text" "Steps: 3" \
  "Sampler: DPM++ 2M" "Schedule type: Karras" "CFG scale: 6.5" "Seed: 1234" "Size: 128x64" \
  "Model hash: 20ec38b827"; do
  check "the parameters chunk holds '$field'" "grep -qaF -- '$field' '$work/out.png'"
done
check "progress shows steps and an ETA on stderr" "grep -q '3/3' '$work/gen-err' && grep -q 's/it' '$work/gen-err'"

"$cli" generate --model "$tiny" --prompt "a lighthouse" --steps 2 --seed 7 --width 64 --height 64 --output "$work/a.png" >/dev/null 2>&1
"$cli" generate --model "$tiny" --prompt "a lighthouse" --steps 2 --seed 7 --width 64 --height 64 --output "$work/b.png" >/dev/null 2>&1
check "the same seed gives the same image" "cmp -s '$work/a.png' '$work/b.png'"

# A model named as a Turbo model gets the few-step defaults; explicit options still win.
ln -s "$(readlink -f "$tiny")" "$work/tiny-sd-turbo.safetensors"
"$cli" generate --model "$work/tiny-sd-turbo.safetensors" --prompt "a cat" --width 64 --height 64 \
  --output "$work/turbo.png" >/dev/null 2>&1
check "a Turbo model defaults to 1 step of Euler a, trailing, no guidance" \
  "grep -qaF 'Steps: 1, Sampler: Euler a, Schedule type: Trailing, CFG scale: 1' '$work/turbo.png'"
"$cli" generate --model "$work/tiny-sd-turbo.safetensors" --prompt "a cat" --width 64 --height 64 \
  --steps 2 --output "$work/turbo2.png" >/dev/null 2>&1
check "an explicit --steps overrides the Turbo default" "grep -qaF 'Steps: 2, ' '$work/turbo2.png'"

# --- bad input: one clear line, status 1, nothing lost ---
expect_error "a missing model" "does not exist" \
  "$cli" generate --model "$work/nope.safetensors" --prompt x --output "$work/x.png"
expect_error "a bad size" "multiples of 64" \
  "$cli" generate --model "$tiny" --prompt x --width 100 --height 64 --output "$work/x.png"
expect_error "an unwritable output" "not writable" \
  "$cli" generate --model "$tiny" --prompt x --output /nonexistent/folder/x.png
head -c 100000 "$tiny" >"$work/truncated.safetensors"
expect_error "a truncated checkpoint" "past the end\|truncated\|beyond\|exceed" \
  "$cli" generate --model "$work/truncated.safetensors" --prompt x --output "$work/x.png"
{ printf '\x80\x02'; head -c 2000 /dev/zero; } >"$work/model.ckpt"
expect_error "a pickle checkpoint is refused" "pickle" \
  "$cli" generate --model "$work/model.ckpt" --prompt x --output "$work/x.png"
cp "$tiny" "$work/corrupt.safetensors"
printf '{"x": 1}' | dd of="$work/corrupt.safetensors" bs=1 seek=8 conv=notrunc 2>/dev/null
expect_error "a corrupted header" "tensor\|header\|json" \
  "$cli" generate --model "$work/corrupt.safetensors" --prompt x --output "$work/x.png"
expect_error "verify on a file without a manifest" "manifest" \
  "$cli" verify --model "$tiny" --reference "$tiny"
check "no image was written by the failures" "[ ! -e '$work/x.png' ]"

# --- Ctrl-C stops cleanly between steps ---
"$cli" generate --model "$tiny" --prompt "a slow one" --steps 400 --width 256 --height 256 \
  --output "$work/cancelled.png" >/dev/null 2>"$work/cancel-err" &
pid=$!
for _ in $(seq 100); do grep -q '/400' "$work/cancel-err" && break; sleep 0.1; done
kill -INT "$pid"
wait "$pid"
status=$?
check "Ctrl-C cancels: status 1, a 'cancelled' line, no file" \
  "[ $status -eq 1 ] && grep -q 'cancelled' '$work/cancel-err' && [ ! -e '$work/cancelled.png' ]"

echo "1..$n"
[ "$failed" -eq 0 ]
