/* gc-random-lora.h — deterministic random LoRA styles, for benchmarks and tests.
 *
 * Writes a kohya LoRA (fp16 lora_down/lora_up/alpha, ss_* metadata) for a checkpoint of any
 * family with the given rank on every layer kohya's trainers target by default: in the UNet's
 * spatial transformers proj_in, proj_out, attn1/attn2 to_q, to_k, to_v, to_out.0,
 * ff.net.0.proj and ff.net.2; in each text encoder self_attn q/k/v/out_proj and mlp fc1/fc2
 * (192 + 72 modules for SD 1.5). Module names are kohya's (gc-lora-names.h): diffusers paths
 * for SD 1.x and 2.x, LDM paths and lora_te1_/lora_te2_ for SDXL; on an OpenCLIP encoder q, k
 * and v are three modules on the rows of attn.in_proj_weight, as kohya names them.
 * Values are a pure function of the seed, the module name and the index:
 *   down = u·√(3/n),  up = 0.2·u·√(3/rank),  alpha = rank
 * with u uniform in [−1, 1) from splitmix64, so ΔW is about a fifth of a weight's size.
 */
#pragma once

#include <stdint.h>

#include "gc-checkpoint.h"

gc_status gc_random_lora_write (const gc_checkpoint *checkpoint, int64_t rank, uint64_t seed,
                                const char *path, gc_error *err);
