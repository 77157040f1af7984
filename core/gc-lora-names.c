#include "gc-lora-names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gc-diffusers-names.h"

enum { NAME_MAX_LEN = 256, MAX_ALIASES = 4 };

typedef struct {
  gc_lora_target target;
  char *aliases[MAX_ALIASES]; /* owned; aliases[0] is the kohya name */
} entry;

typedef struct {
  const char *name; /* owned by its entry */
  size_t entry;
} alias;

struct gc_lora_names {
  entry *entries; /* sorted by weight key and row */
  size_t n_entries;
  alias *aliases; /* sorted by name */
  size_t n_aliases;
};

/* A text encoder of the family: where its weights are, and the prefixes of its module names.
 * Its weights are in OpenCLIP or Hugging Face names (a diffusers folder keeps the latter under
 * the same root, gc-diffusers-names.h): each key says which. */
typedef struct {
  const char *root;
  const char *kohya, *peft;
  bool plain; /* also named without a prefix (the family has one text encoder) */
} encoder;

static const encoder sd1_encoders[] = {
  { "cond_stage_model.transformer.", "lora_te_", "text_encoder.", true },
};
static const encoder sd2_encoders[] = {
  { "cond_stage_model.model.", "lora_te_", "text_encoder.", true },
};
static const encoder sdxl_encoders[] = {
  { "conditioner.embedders.0.transformer.", "lora_te1_", "text_encoder.", false },
  { "conditioner.embedders.1.model.", "lora_te2_", "text_encoder_2.", false },
};

/* OpenCLIP layers and their Hugging Face names; in_proj_weight holds q, k and v by rows. */
static const struct {
  const char *open_clip;
  const char *hf[3];
} open_clip_layers[] = {
  { "attn.in_proj_weight", { "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj" } },
  { "attn.out_proj.weight", { "self_attn.out_proj" } },
  { "mlp.c_fc.weight", { "mlp.fc1" } },
  { "mlp.c_proj.weight", { "mlp.fc2" } },
};

static const char unet_root[] = "model.diffusion_model.";

static int
compare_entries (const void *a, const void *b)
{
  const gc_lora_target *x = &((const entry *) a)->target, *y = &((const entry *) b)->target;
  int c = strcmp (x->weight, y->weight);
  return c ? c : (x->row > y->row) - (x->row < y->row);
}

static int
compare_aliases (const void *a, const void *b)
{
  return strcmp (((const alias *) a)->name, ((const alias *) b)->name);
}

static int
compare_keys (const void *a, const void *b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* prefix + path with '.' → '_' */
static char *
underscored (const char *prefix, const char *path)
{
  size_t p = strlen (prefix), n = strlen (path);
  char *out = malloc (p + n + 1);
  if (out == NULL)
    return NULL;
  memcpy (out, prefix, p);
  for (size_t i = 0; i <= n; i++)
    out[p + i] = path[i] == '.' ? '_' : path[i];
  return out;
}

static char *
joined (const char *prefix, const char *path)
{
  size_t p = strlen (prefix), n = strlen (path);
  char *out = malloc (p + n + 1);
  if (out)
    {
      memcpy (out, prefix, p);
      memcpy (out + p, path, n + 1);
    }
  return out;
}

static bool
ends_with (const char *s, const char *suffix)
{
  size_t n = strlen (s), k = strlen (suffix);
  return n >= k && strcmp (s + n - k, suffix) == 0;
}

/* path without its last k characters, into out */
static bool
trimmed (char *out, const char *path, size_t k)
{
  size_t n = strlen (path);
  if (n < k || n - k >= NAME_MAX_LEN)
    return false;
  memcpy (out, path, n - k);
  out[n - k] = '\0';
  return true;
}

/* Appends an entry whose aliases were set (NULL names are out of memory). */
static gc_status
add_entry (gc_lora_names *names, entry *e, size_t n_aliases)
{
  bool ok = true;
  for (size_t i = 0; i < n_aliases; i++)
    ok = ok && e->aliases[i] != NULL;
  names->entries[names->n_entries++] = *e;
  return ok ? GC_OK : GC_ERR_NOMEM;
}

static gc_status
index_unet (gc_lora_names *names, const gc_diffusers_layout *layout, const char *key,
            const gc_st_tensor *t, bool ldm_first)
{
  char ldm[NAME_MAX_LEN], diffusers[NAME_MAX_LEN];
  gc_diffusers_component component;
  if (!trimmed (ldm, key + strlen (unet_root), 7))
    return GC_OK;
  bool has_diffusers = gc_ldm_key_to_diffusers (layout, key, &component, diffusers,
                                                sizeof diffusers)
                       && component == GC_DIFFUSERS_UNET && ends_with (diffusers, ".weight");
  entry e = { { key, NULL, NULL, 0, t->shape[0], false }, { NULL } };
  size_t n = 0;
  if (has_diffusers)
    {
      diffusers[strlen (diffusers) - 7] = '\0';
      e.aliases[n++] = underscored ("lora_unet_", ldm_first ? ldm : diffusers);
      e.aliases[n++] = underscored ("lora_unet_", ldm_first ? diffusers : ldm);
      e.aliases[n++] = joined ("unet.", diffusers);
      e.aliases[n++] = strdup (diffusers);
    }
  else
    e.aliases[n++] = underscored ("lora_unet_", ldm);
  return add_entry (names, &e, n);
}

/* The module named by a Hugging Face path hf (…self_attn.q_proj) of encoder enc. */
static gc_status
add_text_entry (gc_lora_names *names, const encoder *enc, const char *key, const char *hf,
                int64_t row, int64_t rows)
{
  entry e = { { key, NULL, NULL, row, rows, true }, { NULL } };
  size_t n = 0;
  e.aliases[n++] = underscored (enc->kohya, hf);
  e.aliases[n++] = joined (enc->peft, hf);
  if (enc->plain)
    e.aliases[n++] = strdup (hf);
  return add_entry (names, &e, n);
}

static gc_status
index_text (gc_lora_names *names, const encoder *enc, const char *key, const gc_st_tensor *t)
{
  const char *rest = key + strlen (enc->root);
  char hf[NAME_MAX_LEN];
  if (strncmp (rest, "text_model.", 11) == 0) /* Hugging Face names: the module names */
    return t->ndim == 2 && ends_with (rest, ".weight") && trimmed (hf, rest, 7)
             ? add_text_entry (names, enc, key, hf, 0, t->shape[0])
             : GC_OK;
  int layer, used = 0;
  if (sscanf (rest, "transformer.resblocks.%d.%n", &layer, &used) != 1 || used == 0
      || t->ndim != 2)
    return GC_OK;
  for (size_t i = 0; i < sizeof open_clip_layers / sizeof *open_clip_layers; i++)
    {
      if (strcmp (rest + used, open_clip_layers[i].open_clip) != 0)
        continue;
      int split = open_clip_layers[i].hf[1] ? 3 : 1;
      if (t->shape[0] % split != 0)
        return GC_OK;
      int64_t rows = t->shape[0] / split;
      for (int s = 0; s < split; s++)
        {
          snprintf (hf, sizeof hf, "text_model.encoder.layers.%d.%s", layer,
                    open_clip_layers[i].hf[s]);
          gc_status status = add_text_entry (names, enc, key, hf, s * rows, rows);
          if (status != GC_OK)
            return status;
        }
    }
  return GC_OK;
}

static gc_status
index_key (gc_lora_names *names, const gc_checkpoint *c, const gc_diffusers_layout *layout,
           size_t index)
{
  const char *key = gc_checkpoint_key (c, index);
  const gc_st_tensor *t = gc_checkpoint_tensor (c, index);
  gc_family family = gc_checkpoint_family (c);
  if (strncmp (key, unet_root, strlen (unet_root)) == 0)
    return (t->ndim == 2 || t->ndim == 4) && ends_with (key, ".weight")
             ? index_unet (names, layout, key, t, family == GC_FAMILY_SDXL)
             : GC_OK;
  const encoder *encoders = family == GC_FAMILY_SDXL ? sdxl_encoders
                            : family == GC_FAMILY_SD2 ? sd2_encoders
                                                      : sd1_encoders;
  size_t n = family == GC_FAMILY_SDXL ? 2 : 1;
  for (size_t i = 0; i < n; i++)
    if (strncmp (key, encoders[i].root, strlen (encoders[i].root)) == 0)
      return index_text (names, &encoders[i], key, t);
  return GC_OK;
}

/* The bias of each module: its weight key with "weight" → "bias", when the checkpoint has a
 * vector of the weight's rows under it. */
static gc_status
find_biases (gc_lora_names *names, const gc_checkpoint *c)
{
  size_t count = gc_checkpoint_count (c);
  const char **keys = malloc (sizeof *keys * (count ? count : 1));
  if (keys == NULL)
    return GC_ERR_NOMEM;
  for (size_t i = 0; i < count; i++)
    keys[i] = gc_checkpoint_key (c, i);
  qsort (keys, count, sizeof *keys, compare_keys);
  char bias[NAME_MAX_LEN + 8];
  for (size_t i = 0; i < names->n_entries; i++)
    {
      gc_lora_target *t = &names->entries[i].target;
      if (!trimmed (bias, t->weight, 6))
        continue;
      strcat (bias, "bias");
      const char *probe = bias;
      const char **hit = bsearch (&probe, keys, count, sizeof *keys, compare_keys);
      const gc_st_tensor *b = hit ? gc_checkpoint_find (c, *hit) : NULL;
      const gc_st_tensor *w = gc_checkpoint_find (c, t->weight);
      if (b && b->ndim == 1 && b->shape[0] == w->shape[0])
        t->bias = *hit;
    }
  free (keys);
  return GC_OK;
}

static gc_status
build (gc_lora_names *names, const gc_checkpoint *c)
{
  gc_diffusers_layout layout = gc_diffusers_layout_of_ldm (c);
  gc_status s = GC_OK;
  for (size_t i = 0; s == GC_OK && i < gc_checkpoint_count (c); i++)
    s = index_key (names, c, &layout, i);
  if (s != GC_OK)
    return s;
  qsort (names->entries, names->n_entries, sizeof *names->entries, compare_entries);
  for (size_t i = 0; i < names->n_entries; i++)
    {
      entry *e = &names->entries[i];
      e->target.kohya = e->aliases[0];
      for (size_t k = 0; k < MAX_ALIASES && e->aliases[k]; k++)
        names->aliases[names->n_aliases++] = (alias) { e->aliases[k], i };
    }
  qsort (names->aliases, names->n_aliases, sizeof *names->aliases, compare_aliases);
  return find_biases (names, c);
}

gc_status
gc_lora_names_build (gc_lora_names **out, const gc_checkpoint *c, gc_error *err)
{
  *out = NULL;
  gc_lora_names *names = calloc (1, sizeof *names);
  size_t most = 3 * gc_checkpoint_count (c) + 1; /* an in_proj_weight is three modules */
  if (names)
    {
      names->entries = calloc (most, sizeof *names->entries);
      names->aliases = calloc (MAX_ALIASES * most, sizeof *names->aliases);
    }
  if (names == NULL || names->entries == NULL || names->aliases == NULL || build (names, c))
    {
      gc_lora_names_free (names);
      return gc_error_set (err, GC_ERR_NOMEM, "out of memory indexing the model's weights");
    }
  *out = names;
  return GC_OK;
}

void
gc_lora_names_free (gc_lora_names *names)
{
  if (names == NULL)
    return;
  for (size_t i = 0; i < names->n_entries; i++)
    for (size_t k = 0; k < MAX_ALIASES; k++)
      free (names->entries[i].aliases[k]);
  free (names->entries);
  free (names->aliases);
  free (names);
}

size_t
gc_lora_names_count (const gc_lora_names *names)
{
  return names->n_entries;
}

const gc_lora_target *
gc_lora_names_at (const gc_lora_names *names, size_t index)
{
  return index < names->n_entries ? &names->entries[index].target : NULL;
}

static const gc_lora_target *
find_alias (const gc_lora_names *names, const char *module)
{
  alias probe = { module, 0 };
  const alias *hit = bsearch (&probe, names->aliases, names->n_aliases, sizeof *names->aliases,
                              compare_aliases);
  return hit ? &names->entries[hit->entry].target : NULL;
}

/* Old diffusers attention processors: "….attn1.processor.to_q" is "….attn1.to_q", and their
 * output projection "to_out" is "to_out.0". */
static bool
processor_form (const char *module, char *out, size_t size)
{
  const char *at = strstr (module, ".processor.");
  if (at == NULL || strlen (module) + 3 >= size)
    return false;
  size_t head = (size_t) (at - module);
  memcpy (out, module, head);
  strcpy (out + head, at + strlen (".processor"));
  size_t len = strlen (out);
  if (len >= 7 && strcmp (out + len - 7, ".to_out") == 0)
    strcpy (out + len, ".0");
  return true;
}

const gc_lora_target *
gc_lora_names_find (const gc_lora_names *names, const char *module)
{
  const gc_lora_target *t = find_alias (names, module);
  char normal[NAME_MAX_LEN];
  if (t == NULL && processor_form (module, normal, sizeof normal))
    t = find_alias (names, normal);
  return t;
}

const char *
gc_lora_names_kohya (const gc_lora_names *names, const char *key)
{
  size_t lo = 0, hi = names->n_entries;
  while (lo < hi)
    {
      size_t mid = lo + (hi - lo) / 2;
      if (strcmp (names->entries[mid].target.weight, key) < 0)
        lo = mid + 1;
      else
        hi = mid;
    }
  const entry *e = names->entries;
  bool found = lo < names->n_entries && strcmp (e[lo].target.weight, key) == 0;
  bool split = found && lo + 1 < names->n_entries && strcmp (e[lo + 1].target.weight, key) == 0;
  return found && !split ? e[lo].target.kohya : NULL;
}
