#include "gc-lora-names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gc-diffusers-names.h"

enum { NAME_MAX_LEN = 256 };

typedef struct {
  const char *key; /* LDM key, owned by the checkpoint */
  char *kohya;
  bool text;
} target;

typedef struct {
  char *name;
  size_t target;
} alias;

struct gc_lora_names {
  target *targets; /* sorted by key */
  size_t n_targets;
  alias *aliases;  /* sorted by name */
  size_t n_aliases;
};

static int
compare_targets (const void *a, const void *b)
{
  return strcmp (((const target *) a)->key, ((const target *) b)->key);
}

static int
compare_aliases (const void *a, const void *b)
{
  return strcmp (((const alias *) a)->name, ((const alias *) b)->name);
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
add_alias (gc_lora_names *names, char *name, size_t index)
{
  if (name == NULL)
    return false;
  names->aliases[names->n_aliases++] = (alias) { name, index };
  return true;
}

/* The diffusers module path of a linear or convolution weight of the UNet or text encoder. */
static bool
module_path (const gc_diffusers_layout *layout, const char *key, const gc_st_tensor *t,
             char *out, bool *text)
{
  size_t len = strlen (key);
  gc_diffusers_component component;
  if (len < 7 || strcmp (key + len - 7, ".weight") != 0 || (t->ndim != 2 && t->ndim != 4)
      || !gc_ldm_key_to_diffusers (layout, key, &component, out, NAME_MAX_LEN)
      || component == GC_DIFFUSERS_VAE)
    return false;
  out[strlen (out) - 7] = '\0';
  *text = component == GC_DIFFUSERS_TEXT_ENCODER;
  return true;
}

/* Every name of each target (its module path is known to exist: the target was chosen by it). */
static gc_status
index_names (gc_lora_names *names, const gc_checkpoint *c, const gc_diffusers_layout *layout)
{
  const char *unet_root = "model.diffusion_model.";
  size_t root_len = strlen (unet_root);
  char path[NAME_MAX_LEN], ldm[NAME_MAX_LEN];
  for (size_t i = 0; i < names->n_targets; i++)
    {
      target *t = &names->targets[i];
      bool text;
      module_path (layout, t->key, gc_checkpoint_find (c, t->key), path, &text);
      t->kohya = underscored (text ? "lora_te_" : "lora_unet_", path);
      if (t->kohya == NULL || !add_alias (names, strdup (t->kohya), i)
          || !add_alias (names, joined (text ? "text_encoder." : "unet.", path), i)
          || !add_alias (names, strdup (path), i))
        return GC_ERR_NOMEM;
      if (!text)
        {
          snprintf (ldm, sizeof ldm, "%s", t->key + root_len);
          ldm[strlen (ldm) - 7] = '\0';
          if (!add_alias (names, underscored ("lora_unet_", ldm), i))
            return GC_ERR_NOMEM;
        }
    }
  return GC_OK;
}

gc_status
gc_lora_names_build (gc_lora_names **out, const gc_checkpoint *c, gc_error *err)
{
  *out = NULL;
  gc_lora_names *names = calloc (1, sizeof *names);
  size_t count = gc_checkpoint_count (c);
  if (names)
    {
      names->targets = calloc (count ? count : 1, sizeof *names->targets);
      names->aliases = calloc (4 * count + 1, sizeof *names->aliases);
    }
  if (names == NULL || names->targets == NULL || names->aliases == NULL)
    {
      gc_lora_names_free (names);
      return gc_error_set (err, GC_ERR_NOMEM, "out of memory indexing the model's weights");
    }
  gc_diffusers_layout layout = gc_diffusers_layout_of_ldm (c);
  char path[NAME_MAX_LEN];
  for (size_t i = 0; i < count; i++)
    {
      bool text;
      const char *key = gc_checkpoint_key (c, i);
      if (module_path (&layout, key, gc_checkpoint_tensor (c, i), path, &text))
        names->targets[names->n_targets++] = (target) { key, NULL, text };
    }
  qsort (names->targets, names->n_targets, sizeof *names->targets, compare_targets);
  if (index_names (names, c, &layout) != GC_OK)
    {
      gc_lora_names_free (names);
      return gc_error_set (err, GC_ERR_NOMEM, "out of memory indexing the model's weights");
    }
  qsort (names->aliases, names->n_aliases, sizeof *names->aliases, compare_aliases);
  *out = names;
  return GC_OK;
}

void
gc_lora_names_free (gc_lora_names *names)
{
  if (names == NULL)
    return;
  for (size_t i = 0; i < names->n_targets; i++)
    free (names->targets[i].kohya);
  for (size_t i = 0; i < names->n_aliases; i++)
    free (names->aliases[i].name);
  free (names->targets);
  free (names->aliases);
  free (names);
}

static const target *
find_alias (const gc_lora_names *names, const char *module)
{
  alias probe = { (char *) module, 0 };
  const alias *hit = bsearch (&probe, names->aliases, names->n_aliases, sizeof *names->aliases,
                              compare_aliases);
  return hit ? &names->targets[hit->target] : NULL;
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

const char *
gc_lora_names_find (const gc_lora_names *names, const char *module, bool *text)
{
  const target *t = find_alias (names, module);
  char normal[NAME_MAX_LEN];
  if (t == NULL && processor_form (module, normal, sizeof normal))
    t = find_alias (names, normal);
  if (t == NULL)
    return NULL;
  *text = t->text;
  return t->key;
}

const char *
gc_lora_names_kohya (const gc_lora_names *names, const char *key)
{
  target probe = { key, NULL, false };
  const target *hit = bsearch (&probe, names->targets, names->n_targets,
                               sizeof *names->targets, compare_targets);
  return hit ? hit->kohya : NULL;
}
