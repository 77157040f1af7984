#include "gc-checkpoint.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gc-diffusers-names.h"
#include "gc-json.h"

enum { MAX_FILES = 4, KEY_MAX = 256 };

typedef struct {
  const char *key; /* LDM name: the file's own, or an owned translation */
  const gc_st_tensor *tensor;
} entry;

struct gc_checkpoint {
  gc_safetensors *files[MAX_FILES];
  int n_files;
  entry *entries;
  size_t count;
  char **owned_keys; /* translations of diffusers names, freed with the checkpoint */
  size_t n_owned;
  size_t *slots; /* open addressing: entry index + 1, 0 = empty */
  size_t n_slots;
  gc_param_patch **patches; /* per entry: the styles applied to it, or NULL */
  gc_family family;
  char prediction_type[32]; /* a diffusers folder's scheduler says; "" if it does not */
};

static uint64_t
hash_key (const char *key)
{
  uint64_t h = 1469598103934665603ull;
  for (; *key; key++)
    h = (h ^ (unsigned char) *key) * 1099511628211ull;
  return h;
}

/* entry index + 1 of key, 0 if absent */
static size_t
find_entry (const gc_checkpoint *c, const char *key)
{
  size_t mask = c->n_slots - 1;
  for (size_t i = hash_key (key) & mask;; i = (i + 1) & mask)
    {
      size_t slot = c->slots[i];
      if (slot == 0 || strcmp (c->entries[slot - 1].key, key) == 0)
        return slot;
    }
}

const gc_st_tensor *
gc_checkpoint_find (const gc_checkpoint *c, const char *key)
{
  size_t slot = find_entry (c, key);
  return slot ? c->entries[slot - 1].tensor : NULL;
}

gc_param_patch **
gc_checkpoint_patch_slot (const gc_checkpoint *c, const char *key)
{
  size_t slot = find_entry (c, key);
  return slot ? &c->patches[slot - 1] : NULL;
}

static gc_status
build_index (gc_checkpoint *c, gc_error *err)
{
  c->n_slots = 16;
  while (c->n_slots < 2 * c->count)
    c->n_slots *= 2;
  c->slots = calloc (c->n_slots, sizeof *c->slots);
  c->patches = calloc (c->count ? c->count : 1, sizeof *c->patches);
  if (c->slots == NULL || c->patches == NULL)
    return gc_error_set (err, GC_ERR_NOMEM, "out of memory indexing %zu tensors", c->count);
  size_t mask = c->n_slots - 1;
  for (size_t e = 0; e < c->count; e++)
    {
      size_t i = hash_key (c->entries[e].key) & mask;
      while (c->slots[i] != 0)
        {
          if (strcmp (c->entries[c->slots[i] - 1].key, c->entries[e].key) == 0)
            return gc_error_set (err, GC_ERR_FORMAT, "two tensors are both named '%s'",
                                 c->entries[e].key);
          i = (i + 1) & mask;
        }
      c->slots[i] = e + 1;
    }
  return GC_OK;
}

static gc_status
add_entries (gc_checkpoint *c, size_t extra, gc_error *err)
{
  entry *grown = realloc (c->entries, (c->count + extra) * sizeof *grown);
  char **owned = realloc (c->owned_keys, (c->n_owned + extra) * sizeof *owned);
  if (grown)
    c->entries = grown;
  if (owned)
    c->owned_keys = owned;
  if (grown == NULL || owned == NULL)
    return gc_error_set (err, GC_ERR_NOMEM, "out of memory listing tensors");
  return GC_OK;
}

static gc_status
add_single_file (gc_checkpoint *c, const char *path, gc_error *err)
{
  gc_status status = gc_safetensors_open (&c->files[c->n_files], path, err);
  if (status != GC_OK)
    return status;
  const gc_safetensors *file = c->files[c->n_files++];
  size_t n = gc_safetensors_count (file);
  if ((status = add_entries (c, n, err)) != GC_OK)
    return status;
  for (size_t i = 0; i < n; i++)
    {
      const gc_st_tensor *t = gc_safetensors_at (file, i);
      c->entries[c->count++] = (entry) { t->name, t };
    }
  return GC_OK;
}

static bool
file_exists (const char *path)
{
  struct stat st;
  return stat (path, &st) == 0 && S_ISREG (st.st_mode);
}

/* component/name.safetensors, or the .fp16 variant that diffusers repositories also carry */
static bool
find_component_file (const char *folder, const char *component, const char *stem, char *out,
                     size_t out_size)
{
  snprintf (out, out_size, "%s/%s/%s.safetensors", folder, component, stem);
  if (file_exists (out))
    return true;
  snprintf (out, out_size, "%s/%s/%s.fp16.safetensors", folder, component, stem);
  return file_exists (out);
}

static int
count_indices (const gc_safetensors *file, const char *format)
{
  int highest = -1;
  for (size_t i = 0; i < gc_safetensors_count (file); i++)
    {
      int index, used = 0;
      if (sscanf (gc_safetensors_at (file, i)->name, format, &index, &used) == 1 && used > 0
          && index > highest && index < 64)
        highest = index;
    }
  return highest + 1;
}

static gc_diffusers_layout
read_layout (const gc_safetensors *unet, const gc_safetensors *vae)
{
  gc_diffusers_layout layout = { 0 };
  layout.layers_per_block = count_indices (unet, "down_blocks.0.resnets.%d.%n");
  layout.vae_levels = count_indices (vae, "encoder.down_blocks.%d.%n");
  for (int level = 0; level < GC_DIFFUSERS_MAX_LEVELS; level++)
    {
      char format[64];
      snprintf (format, sizeof format, "up_blocks.%d.attentions.%%d.%%n", level);
      layout.up_has_attention[level] = count_indices (unet, format) > 0;
    }
  return layout;
}

static gc_status
add_translated (gc_checkpoint *c, const gc_safetensors *file, gc_diffusers_component component,
                const gc_diffusers_layout *layout, gc_error *err)
{
  size_t n = gc_safetensors_count (file);
  gc_status status = add_entries (c, n, err);
  if (status != GC_OK)
    return status;
  for (size_t i = 0; i < n; i++)
    {
      const gc_st_tensor *t = gc_safetensors_at (file, i);
      char key[KEY_MAX];
      if (!gc_diffusers_key_to_ldm (layout, component, t->name, key, sizeof key))
        continue; /* nothing in the model reads it */
      char *copy = strdup (key);
      if (copy == NULL)
        return gc_error_set (err, GC_ERR_NOMEM, "out of memory listing tensors");
      c->owned_keys[c->n_owned++] = copy;
      c->entries[c->count++] = (entry) { copy, t };
    }
  return GC_OK;
}

/* One component of a diffusers folder: its file, and a tensor every such component has (a
 * VAE put in unet/, say, is refused naming the file instead of failing later in the model). */
typedef struct {
  const char *component, *stem;
  gc_diffusers_component kind;
  const char *what, *marker;
} diffusers_part;

static const diffusers_part diffusers_parts[] = {
  { "unet", "diffusion_pytorch_model", GC_DIFFUSERS_UNET, "UNet", "conv_in.weight" },
  { "vae", "diffusion_pytorch_model", GC_DIFFUSERS_VAE, "VAE", "decoder.conv_in.weight" },
  { "text_encoder", "model", GC_DIFFUSERS_TEXT_ENCODER, "text encoder",
    "text_model.embeddings.token_embedding.weight" },
  { "text_encoder_2", "model", GC_DIFFUSERS_TEXT_ENCODER_2, "text encoder",
    "text_model.embeddings.token_embedding.weight" },
};

static gc_status
open_component (gc_checkpoint *c, const char *folder, const diffusers_part *part, gc_error *err)
{
  char path[4096];
  if (!find_component_file (folder, part->component, part->stem, path, sizeof path))
    return gc_error_set (err, GC_ERR_UNSUPPORTED,
                         "%s is a folder but not a diffusers model: %s/%s.safetensors is "
                         "missing",
                         folder, part->component, part->stem);
  gc_status status = gc_safetensors_open (&c->files[c->n_files], path, err);
  if (status != GC_OK)
    return status;
  if (gc_safetensors_find (c->files[c->n_files++], part->marker) == NULL)
    return gc_error_set (err, GC_ERR_UNSUPPORTED,
                         "%s is not the %s of a diffusers model: it has no tensor '%s'", path,
                         part->what, part->marker);
  return GC_OK;
}

static bool
directory_exists (const char *folder, const char *name)
{
  char path[4096];
  struct stat st;
  snprintf (path, sizeof path, "%s/%s", folder, name);
  return stat (path, &st) == 0 && S_ISDIR (st.st_mode);
}

/* The family from the components, as detect_family does from LDM keys: SDXL has a second text
 * encoder; SD 2.x's UNet projects into its transformers with linear layers (a 2-D proj_in)
 * where SD 1.x has 1×1 convolutions. */
static gc_family
diffusers_family (const gc_safetensors *unet, bool second_encoder)
{
  if (second_encoder)
    return GC_FAMILY_SDXL;
  const gc_st_tensor *proj = gc_safetensors_find (unet,
                                                  "down_blocks.0.attentions.0.proj_in.weight");
  return proj && proj->ndim == 2 ? GC_FAMILY_SD2 : GC_FAMILY_SD1;
}

/* Keeps the prediction_type a scheduler config names ("epsilon", "v_prediction"). */
static gc_status
parse_scheduler_config (gc_checkpoint *c, const char *path, const char *text, size_t length,
                        gc_error *err)
{
  gc_json *doc;
  if (gc_json_parse (&doc, text, length, err) != GC_OK)
    return gc_error_prefix (err, "%s", path);
  const gc_json_value *type = gc_json_get (gc_json_root (doc), "prediction_type");
  if (type && gc_json_type_of (type) == GC_JSON_STRING)
    snprintf (c->prediction_type, sizeof c->prediction_type, "%s", gc_json_string (type, NULL));
  gc_json_free (doc);
  return GC_OK;
}

/* What the model was trained to predict, from scheduler/scheduler_config.json when the folder
 * has one: shapes cannot tell, and this is where diffusers keeps it. */
static gc_status
read_scheduler_config (gc_checkpoint *c, const char *folder, gc_error *err)
{
  enum { CONFIG_LIMIT = 1 << 16 }; /* a scheduler config is a few hundred bytes */
  char path[4096];
  snprintf (path, sizeof path, "%s/scheduler/scheduler_config.json", folder);
  FILE *file = fopen (path, "rb");
  if (file == NULL)
    return errno == ENOENT ? GC_OK
                           : gc_error_set (err, GC_ERR_IO, "cannot open %s: %s", path,
                                           strerror (errno));
  char *text = malloc (CONFIG_LIMIT);
  size_t length = text ? fread (text, 1, CONFIG_LIMIT, file) : 0;
  bool failed = ferror (file) != 0;
  fclose (file);
  gc_status status;
  if (text == NULL)
    status = gc_error_set (err, GC_ERR_NOMEM, "out of memory reading %s", path);
  else if (failed)
    status = gc_error_set (err, GC_ERR_IO, "cannot read %s", path);
  else if (length == CONFIG_LIMIT)
    status = gc_error_set (err, GC_ERR_FORMAT, "%s is too large for a scheduler config", path);
  else
    status = parse_scheduler_config (c, path, text, length, err);
  free (text);
  return status;
}

static gc_status
add_diffusers_folder (gc_checkpoint *c, const char *folder, gc_error *err)
{
  bool second_encoder = directory_exists (folder, "text_encoder_2");
  size_t n_parts = second_encoder ? 4 : 3;
  for (size_t p = 0; p < n_parts; p++)
    {
      gc_status status = open_component (c, folder, &diffusers_parts[p], err);
      if (status != GC_OK)
        return status;
    }
  gc_diffusers_layout layout = read_layout (c->files[0], c->files[1]);
  layout.family = c->family = diffusers_family (c->files[0], second_encoder);
  for (size_t p = 0; p < n_parts; p++)
    {
      gc_status status = add_translated (c, c->files[p], diffusers_parts[p].kind, &layout, err);
      if (status != GC_OK)
        return status;
    }
  return read_scheduler_config (c, folder, err);
}

static bool
looks_like_lora (const gc_checkpoint *c)
{
  for (size_t i = 0; i < c->count; i++)
    if (strncmp (c->entries[i].key, "lora_", 5) == 0 || strstr (c->entries[i].key, ".lora_")
        || strstr (c->entries[i].key, ".lora."))
      return true;
  return false;
}

static gc_status
detect_family (gc_checkpoint *c, const char *path, gc_error *err)
{
  if (!gc_checkpoint_find (c, "model.diffusion_model.input_blocks.0.0.weight"))
    {
      if (looks_like_lora (c))
        return gc_error_set (err, GC_ERR_UNSUPPORTED,
                             "%s is a LoRA (a style), not a checkpoint: add it as a style", path);
      return gc_error_set (err, GC_ERR_UNSUPPORTED,
                           "%s holds no Stable Diffusion UNet (no model.diffusion_model.* "
                           "weights): it is not a checkpoint Gouache can use",
                           path);
    }
  if (!gc_checkpoint_find (c, "first_stage_model.decoder.conv_in.weight"))
    return gc_error_set (err, GC_ERR_UNSUPPORTED,
                         "%s has no VAE (first_stage_model.*): use a checkpoint with its VAE "
                         "baked in",
                         path);
  if (gc_checkpoint_find (c, "conditioner.embedders.1.model.token_embedding.weight"))
    c->family = GC_FAMILY_SDXL;
  else if (gc_checkpoint_find (c, "cond_stage_model.model.token_embedding.weight"))
    c->family = GC_FAMILY_SD2;
  else if (gc_checkpoint_find (
             c, "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"))
    c->family = GC_FAMILY_SD1;
  else
    return gc_error_set (err, GC_ERR_UNSUPPORTED,
                         "%s has no text encoder Gouache knows (CLIP or OpenCLIP)", path);
  return GC_OK;
}

gc_status
gc_checkpoint_open (gc_checkpoint **out, const char *path, gc_error *err)
{
  *out = NULL;
  struct stat st;
  if (stat (path, &st) != 0)
    return gc_error_set (err, GC_ERR_IO, "cannot open %s: %s", path, strerror (errno));
  gc_checkpoint *c = calloc (1, sizeof *c);
  if (c == NULL)
    return gc_error_set (err, GC_ERR_NOMEM, "out of memory opening %s", path);
  bool folder = S_ISDIR (st.st_mode);
  gc_status status = folder ? add_diffusers_folder (c, path, err) : add_single_file (c, path, err);
  if (status == GC_OK)
    status = build_index (c, err);
  if (status == GC_OK && !folder) /* a folder's components were checked as they were opened */
    status = detect_family (c, path, err);
  if (status != GC_OK)
    {
      gc_checkpoint_close (c);
      return status;
    }
  *out = c;
  return GC_OK;
}

void
gc_checkpoint_close (gc_checkpoint *c)
{
  if (c == NULL)
    return;
  for (int i = 0; i < c->n_files; i++)
    gc_safetensors_close (c->files[i]);
  for (size_t i = 0; i < c->n_owned; i++)
    free (c->owned_keys[i]);
  free (c->owned_keys);
  free (c->entries);
  free (c->slots);
  free (c->patches);
  free (c);
}

gc_family
gc_checkpoint_family (const gc_checkpoint *c)
{
  return c->family;
}

const char *
gc_family_name (gc_family family)
{
  switch (family)
    {
    case GC_FAMILY_SD1: return "SD 1.x";
    case GC_FAMILY_SD2: return "SD 2.x";
    case GC_FAMILY_SDXL: return "SDXL";
    }
  return "unknown";
}

size_t
gc_checkpoint_count (const gc_checkpoint *c)
{
  return c->count;
}

const char *
gc_checkpoint_key (const gc_checkpoint *c, size_t index)
{
  return index < c->count ? c->entries[index].key : NULL;
}

const gc_st_tensor *
gc_checkpoint_tensor (const gc_checkpoint *c, size_t index)
{
  return index < c->count ? c->entries[index].tensor : NULL;
}

const char *
gc_checkpoint_metadata (const gc_checkpoint *c, const char *key)
{
  return c->n_files > 0 ? gc_safetensors_metadata (c->files[0], key) : NULL;
}

const char *
gc_checkpoint_prediction_type (const gc_checkpoint *c)
{
  if (c->prediction_type[0])
    return c->prediction_type;
  return gc_checkpoint_metadata (c, "modelspec.prediction_type");
}

void
gc_checkpoint_release_range (const gc_checkpoint *c, const void *data, size_t size)
{
  uintptr_t page = (uintptr_t) sysconf (_SC_PAGESIZE);
  uintptr_t begin = (uintptr_t) data, end = begin + size;
  for (int i = 0; i < c->n_files; i++)
    {
      size_t section_size;
      uintptr_t section = (uintptr_t) gc_safetensors_data_section (c->files[i], &section_size);
      if (begin < section || end > section + section_size)
        continue;
      uintptr_t start = (begin + page - 1) & ~(page - 1), stop = end & ~(page - 1);
      if (stop > start)
        madvise ((void *) start, stop - start, MADV_DONTNEED);
      return;
    }
}

void
gc_checkpoint_release_pages (gc_checkpoint *c)
{
  uintptr_t page = (uintptr_t) sysconf (_SC_PAGESIZE);
  for (int i = 0; i < c->n_files; i++)
    {
      size_t size;
      const void *data = gc_safetensors_data_section (c->files[i], &size);
      uintptr_t start = ((uintptr_t) data + page - 1) & ~(page - 1);
      uintptr_t end = ((uintptr_t) data + size) & ~(page - 1);
      if (end > start)
        madvise ((void *) start, end - start, MADV_DONTNEED);
    }
}
