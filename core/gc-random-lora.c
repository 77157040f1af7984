#include "gc-random-lora.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gc-lora-names.h"
#include "gc-safetensors.h"

static const char *const targeted[] = {
  ".proj_in.weight", ".proj_out.weight",
  ".attn1.to_q.weight", ".attn1.to_k.weight", ".attn1.to_v.weight", ".attn1.to_out.0.weight",
  ".attn2.to_q.weight", ".attn2.to_k.weight", ".attn2.to_v.weight", ".attn2.to_out.0.weight",
  ".ff.net.0.proj.weight", ".ff.net.2.weight",
  ".self_attn.q_proj.weight", ".self_attn.k_proj.weight", ".self_attn.v_proj.weight",
  ".self_attn.out_proj.weight", ".mlp.fc1.weight", ".mlp.fc2.weight",
  ".attn.in_proj_weight", ".attn.out_proj.weight", ".mlp.c_fc.weight", ".mlp.c_proj.weight",
};

static bool
is_targeted (const char *key)
{
  size_t len = strlen (key);
  for (size_t i = 0; i < sizeof targeted / sizeof *targeted; i++)
    {
      size_t s = strlen (targeted[i]);
      if (len > s && strcmp (key + len - s, targeted[i]) == 0)
        return true;
    }
  return false;
}

static uint64_t
splitmix64 (uint64_t x)
{
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

static uint64_t
name_seed (const char *name, uint64_t seed)
{
  uint64_t h = 1469598103934665603ull ^ seed;
  for (; *name; name++)
    h = (h ^ (unsigned char) *name) * 1099511628211ull;
  return h;
}

/* count fp16 values u·amplitude for the tensor named name */
static uint16_t *
random_values (const char *name, uint64_t seed, int64_t count, double amplitude)
{
  uint16_t *out = malloc (sizeof (uint16_t) * (size_t) count);
  uint64_t base = name_seed (name, seed);
  for (int64_t i = 0; out && i < count; i++)
    {
      double u = (double) (splitmix64 (base + (uint64_t) i) >> 40) / (double) (1 << 24) * 2 - 1;
      out[i] = gc_f64_to_f16 (u * amplitude);
    }
  return out;
}

typedef struct {
  gc_st_entry *entries;
  void **data;
  char **names;
  size_t count;
} tensors;

static bool
add_tensor (tensors *t, const char *module, const char *part, int ndim, const int64_t *shape,
            void *data)
{
  size_t len = strlen (module) + strlen (part) + 1;
  char *name = malloc (len);
  if (name == NULL || data == NULL)
    {
      free (name);
      free (data);
      return false;
    }
  snprintf (name, len, "%s%s", module, part);
  gc_st_entry *e = &t->entries[t->count];
  *e = (gc_st_entry) { name, GC_DTYPE_F16, ndim };
  memcpy (e->shape, shape, sizeof (int64_t) * (size_t) ndim);
  t->names[t->count] = name;
  t->data[t->count++] = data;
  return true;
}

/* lora_down [rank, in(, kh, kw)], lora_up [rows, rank(, 1, 1)] and alpha for rows of a weight */
static bool
add_module (tensors *t, const char *module, const gc_st_tensor *w, int64_t rows, int64_t rank,
            uint64_t seed)
{
  int64_t n = 1, down_shape[4] = { rank }, up_shape[4] = { rows, rank, 1, 1 };
  for (int i = 1; i < w->ndim; i++)
    n *= w->shape[i], down_shape[i] = w->shape[i];
  char name[320];
  snprintf (name, sizeof name, "%s.lora_down.weight", module);
  uint16_t *down = random_values (name, seed, rank * n, sqrt (3.0 / (double) n));
  snprintf (name, sizeof name, "%s.lora_up.weight", module);
  uint16_t *up = random_values (name, seed, rows * rank, 0.2 * sqrt (3.0 / (double) rank));
  uint16_t *alpha = malloc (sizeof *alpha);
  if (alpha)
    *alpha = gc_f32_to_f16 ((float) rank);
  /* each call takes its data, also when it fails */
  bool ok = add_tensor (t, module, ".lora_down.weight", w->ndim, down_shape, down);
  ok = add_tensor (t, module, ".lora_up.weight", w->ndim, up_shape, up) && ok;
  return add_tensor (t, module, ".alpha", 0, up_shape, alpha) && ok;
}

gc_status
gc_random_lora_write (const gc_checkpoint *c, int64_t rank, uint64_t seed, const char *path,
                      gc_error *err)
{
  if (rank < 1 || rank > 4096)
    return gc_error_set (err, GC_ERR_INVALID, "rank %lld is not in 1..4096", (long long) rank);
  gc_lora_names *names = NULL;
  gc_status s = gc_lora_names_build (&names, c, err);
  size_t most = s == GC_OK ? 3 * gc_lora_names_count (names) + 1 : 1;
  tensors t = { calloc (most, sizeof (gc_st_entry)), calloc (most, sizeof (void *)),
                calloc (most, sizeof (char *)), 0 };
  if (s == GC_OK && (t.entries == NULL || t.data == NULL || t.names == NULL))
    s = gc_error_set (err, GC_ERR_NOMEM, "out of memory");
  for (size_t i = 0; s == GC_OK && i < gc_lora_names_count (names); i++)
    {
      const gc_lora_target *target = gc_lora_names_at (names, i);
      if (is_targeted (target->weight)
          && !add_module (&t, target->kohya, gc_checkpoint_find (c, target->weight),
                          target->rows, rank, seed))
        s = gc_error_set (err, GC_ERR_NOMEM, "out of memory making a LoRA");
    }
  char dim[32];
  snprintf (dim, sizeof dim, "%lld", (long long) rank);
  gc_family family = gc_checkpoint_family (c);
  const char *metadata[] = { "ss_network_module", "networks.lora", "ss_network_dim", dim,
                             "ss_network_alpha", dim, "ss_base_model_version",
                             family == GC_FAMILY_SDXL  ? "sdxl_base_v1-0"
                             : family == GC_FAMILY_SD2 ? "sd_v2"
                                                       : "sd_v1",
                             "ss_v2", family == GC_FAMILY_SD2 ? "True" : "False",
                             "gouache.random_lora", "1" };
  if (s == GC_OK)
    s = gc_safetensors_write (path, t.entries, (const void *const *) t.data, t.count, metadata,
                              sizeof metadata / sizeof *metadata / 2, err);
  for (size_t i = 0; i < t.count; i++)
    free (t.names[i]), free (t.data[i]);
  free (t.entries), free (t.data), free (t.names);
  gc_lora_names_free (names);
  return s;
}
