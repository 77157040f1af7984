/* gouache-dataset.c: a folder of training images, checked, captioned and fitted into buckets
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "gouache-dataset"

#include <gdk-pixbuf/gdk-pixbuf.h>
#include <glib/gi18n-lib.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "gouache-dataset.h"

static void
image_free (gpointer data)
{
  GouacheDatasetImage *image = data;

  g_free (image->path);
  g_free (image->name);
  g_free (image->caption);
  g_free (image);
}

void
gouache_dataset_free (GouacheDataset *dataset)
{
  if (dataset == NULL)
    return;

  g_free (dataset->folder);
  g_clear_pointer (&dataset->images, g_ptr_array_unref);
  g_clear_pointer (&dataset->unreadable, g_ptr_array_unref);
  g_clear_pointer (&dataset->too_small, g_ptr_array_unref);
  g_clear_pointer (&dataset->duplicates, g_ptr_array_unref);
  g_free (dataset->hash);
  g_free (dataset);
}

/* Scanning ----------------------------------------------------------------- */

static gboolean
is_image_name (const char *name)
{
  static const char *const extensions[] = { ".png", ".jpg", ".jpeg", ".webp" };
  g_autofree char *lower = g_ascii_strdown (name, -1);

  if (name[0] == '.')
    return FALSE;
  for (gsize i = 0; i < G_N_ELEMENTS (extensions); i++)
    if (g_str_has_suffix (lower, extensions[i]))
      return TRUE;
  return FALSE;
}

static int
compare_names (gconstpointer a,
               gconstpointer b)
{
  return g_strcmp0 (*(const char *const *) a, *(const char *const *) b);
}

/* The sidecar "name.txt" of "name.ext", trimmed; NULL when there is none. */
static char *
read_caption (const char *path)
{
  const char *dot = strrchr (path, '.');
  g_autofree char *stem = g_strndup (path, dot ? (gsize) (dot - path) : strlen (path));
  g_autofree char *sidecar = g_strconcat (stem, ".txt", NULL);
  g_autofree char *text = NULL;

  if (!g_file_get_contents (sidecar, &text, NULL, NULL) || !g_utf8_validate (text, -1, NULL))
    return NULL;
  return g_strstrip (g_steal_pointer (&text));
}

/* Decodes the bytes as an image, with its EXIF orientation applied. */
static GdkPixbuf *
decode (const guchar  *bytes,
        gsize          size,
        GError       **error)
{
  g_autoptr (GdkPixbufLoader) loader = gdk_pixbuf_loader_new ();
  GdkPixbuf *pixbuf;

  if (!gdk_pixbuf_loader_write (loader, bytes, size, error) ||
      !gdk_pixbuf_loader_close (loader, error))
    return NULL;
  pixbuf = gdk_pixbuf_loader_get_pixbuf (loader);
  if (pixbuf == NULL)
    {
      g_set_error_literal (error, GDK_PIXBUF_ERROR, GDK_PIXBUF_ERROR_CORRUPT_IMAGE,
                           _("The file holds no image"));
      return NULL;
    }
  return gdk_pixbuf_apply_embedded_orientation (pixbuf);
}

GouacheDataset *
gouache_dataset_scan (const char    *folder,
                      int            min_side,
                      GCancellable  *cancellable,
                      GError       **error)
{
  g_autoptr (GouacheDataset) dataset = g_new0 (GouacheDataset, 1);
  g_autoptr (GDir) dir = NULL;
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr (GChecksum) total = g_checksum_new (G_CHECKSUM_SHA256);
  const char *name;

  dir = g_dir_open (folder, 0, error);
  if (dir == NULL)
    return NULL;

  dataset->folder = g_strdup (folder);
  dataset->images = g_ptr_array_new_with_free_func (image_free);
  dataset->unreadable = g_ptr_array_new_with_free_func (g_free);
  dataset->too_small = g_ptr_array_new_with_free_func (g_free);
  dataset->duplicates = g_ptr_array_new_with_free_func (g_free);

  while ((name = g_dir_read_name (dir)))
    if (is_image_name (name))
      g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_names);

  for (guint i = 0; i < names->len; i++)
    {
      const char *file = g_ptr_array_index (names, i);
      g_autofree char *path = g_build_filename (folder, file, NULL);
      g_autofree guchar *bytes = NULL;
      g_autoptr (GError) local = NULL;
      g_autoptr (GdkPixbuf) pixbuf = NULL;
      g_autofree char *hash = NULL;
      const char *earlier;
      GouacheDatasetImage *image;
      gsize size = 0;

      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return NULL;

      if (!g_file_get_contents (path, (char **) &bytes, &size, &local) ||
          (pixbuf = decode (bytes, size, &local)) == NULL)
        {
          g_ptr_array_add (dataset->unreadable, g_strdup_printf ("%s: %s", file, local->message));
          continue;
        }

      hash = g_compute_checksum_for_data (G_CHECKSUM_SHA256, bytes, size);
      earlier = g_hash_table_lookup (seen, hash);
      if (earlier)
        {
          g_ptr_array_add (dataset->duplicates, g_strdup_printf ("%s = %s", file, earlier));
          continue;
        }
      g_hash_table_insert (seen, g_strdup (hash), g_strdup (file));

      if (MIN (gdk_pixbuf_get_width (pixbuf), gdk_pixbuf_get_height (pixbuf)) < min_side)
        {
          g_ptr_array_add (dataset->too_small,
                           g_strdup_printf ("%s (%d×%d)", file, gdk_pixbuf_get_width (pixbuf),
                                            gdk_pixbuf_get_height (pixbuf)));
          continue;
        }

      image = g_new0 (GouacheDatasetImage, 1);
      image->path = g_steal_pointer (&path);
      image->name = g_strdup (file);
      image->caption = read_caption (image->path);
      g_strlcpy (image->sha256, hash, sizeof image->sha256);
      image->width = gdk_pixbuf_get_width (pixbuf);
      image->height = gdk_pixbuf_get_height (pixbuf);
      if (image->caption == NULL)
        dataset->missing_captions++;
      g_ptr_array_add (dataset->images, image);

      g_checksum_update (total, (const guchar *) image->sha256, 64);
      g_checksum_update (total, (const guchar *) (image->caption ? image->caption : ""), -1);
      g_checksum_update (total, (const guchar *) "\n", 1);
    }

  dataset->hash = g_strdup (g_checksum_get_string (total));
  return g_steal_pointer (&dataset);
}

/* Captions ----------------------------------------------------------------- */

char *
gouache_dataset_caption (const GouacheDatasetImage *image,
                         const char                *trigger)
{
  const char *text = image->caption ? image->caption : "";

  if (trigger == NULL || trigger[0] == '\0')
    return g_strdup (text);
  if (text[0] == '\0')
    return g_strdup (trigger);
  if (strstr (text, trigger) != NULL)
    return g_strdup (text);
  return g_strconcat (trigger, ", ", text, NULL);
}

/* Buckets ------------------------------------------------------------------ */

static void
add_bucket (GArray *buckets,
            int     width,
            int     height)
{
  for (guint i = 0; i < buckets->len; i++)
    {
      GouacheBucket *b = &g_array_index (buckets, GouacheBucket, i);

      if (b->width == width && b->height == height)
        return;
    }
  g_array_append_val (buckets, ((GouacheBucket) { width, height }));
}

static int
compare_buckets (gconstpointer a,
                 gconstpointer b)
{
  const GouacheBucket *x = a, *y = b;
  double ax = (double) x->width / x->height, ay = (double) y->width / y->height;

  return ax < ay ? -1 : ax > ay;
}

GArray *
gouache_dataset_buckets (int resolution,
                         int multiple)
{
  GArray *buckets = g_array_new (FALSE, FALSE, sizeof (GouacheBucket));
  gint64 area = (gint64) resolution * resolution;
  int min_size = MAX (multiple, resolution / 2 / multiple * multiple);
  int max_size = MAX (min_size, 2 * resolution / multiple * multiple);
  int side = MAX (multiple, (int) (sqrt ((double) area) / multiple) * multiple);

  add_bucket (buckets, side, side);
  for (int width = min_size; width <= max_size; width += multiple)
    {
      int height = (int) MIN ((gint64) max_size, area / width / multiple * multiple);

      if (height >= min_size)
        {
          add_bucket (buckets, width, height);
          add_bucket (buckets, height, width);
        }
    }
  g_array_sort (buckets, compare_buckets);
  return buckets;
}

GouacheBucket
gouache_dataset_bucket_for (const GArray *buckets,
                            int           width,
                            int           height)
{
  GouacheBucket best = g_array_index (buckets, GouacheBucket, 0);
  double aspect = log ((double) width / height), error = G_MAXDOUBLE;

  for (guint i = 0; i < buckets->len; i++)
    {
      GouacheBucket b = g_array_index (buckets, GouacheBucket, i);
      double e = fabs (log ((double) b.width / b.height) - aspect);

      /* ties go to the larger bucket (the square one at the resolution comes first) */
      if (e < error - 1e-12)
        best = b, error = e;
    }
  return best;
}

float *
gouache_dataset_load (const GouacheDatasetImage  *image,
                      GouacheBucket               bucket,
                      GError                    **error)
{
  g_autofree guchar *bytes = NULL;
  g_autoptr (GdkPixbuf) decoded = NULL;
  g_autoptr (GdkPixbuf) scaled = NULL;
  gsize size = 0;
  double scale;
  int width, height, x0, y0, stride, channels;
  const guchar *pixels;
  float *out;

  if (!g_file_get_contents (image->path, (char **) &bytes, &size, error) ||
      (decoded = decode (bytes, size, error)) == NULL)
    return NULL;

  /* cover the bucket, then crop its centre */
  width = gdk_pixbuf_get_width (decoded);
  height = gdk_pixbuf_get_height (decoded);
  scale = MAX ((double) bucket.width / width, (double) bucket.height / height);
  width = MAX (bucket.width, (int) ceil (width * scale - 1e-6));
  height = MAX (bucket.height, (int) ceil (height * scale - 1e-6));
  scaled = gdk_pixbuf_scale_simple (decoded, width, height, GDK_INTERP_HYPER);
  if (scaled == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, _("Not enough memory to resize “%s”"),
                   image->name);
      return NULL;
    }
  x0 = (width - bucket.width) / 2;
  y0 = (height - bucket.height) / 2;
  stride = gdk_pixbuf_get_rowstride (scaled);
  channels = gdk_pixbuf_get_n_channels (scaled);
  pixels = gdk_pixbuf_read_pixels (scaled);

  out = g_new (float, (gsize) 3 * bucket.width * bucket.height);
  for (int y = 0; y < bucket.height; y++)
    for (int x = 0; x < bucket.width; x++)
      {
        const guchar *p = pixels + (gsize) (y0 + y) * stride + (gsize) (x0 + x) * channels;
        float alpha = channels == 4 ? p[3] / 255.0f : 1.0f;

        for (int c = 0; c < 3; c++)
          {
            float v = (p[c] / 255.0f) * alpha + (1.0f - alpha);

            out[((gsize) c * bucket.height + y) * bucket.width + x] = v * 2.0f - 1.0f;
          }
      }
  return out;
}

/* Tags and the report ------------------------------------------------------- */

char *
gouache_dataset_tag_frequency (const GouacheDataset *dataset,
                               const char           *trigger)
{
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  g_autoptr (GHashTable) counts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GPtrArray) order = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (JsonGenerator) generator = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;
  g_autofree char *folder = g_path_get_basename (dataset->folder);

  for (guint i = 0; i < dataset->images->len; i++)
    {
      g_autofree char *caption = gouache_dataset_caption (g_ptr_array_index (dataset->images, i),
                                                          trigger);
      g_auto (GStrv) tags = g_strsplit (caption, ",", -1);

      for (char **tag = tags; *tag; tag++)
        {
          char *t = g_strstrip (*tag);
          gpointer key, value;

          if (*t == '\0')
            continue;
          if (g_hash_table_lookup_extended (counts, t, &key, &value))
            g_hash_table_insert (counts, g_strdup (t), GUINT_TO_POINTER (GPOINTER_TO_UINT (value) + 1));
          else
            {
              g_hash_table_insert (counts, g_strdup (t), GUINT_TO_POINTER (1));
              g_ptr_array_add (order, g_strdup (t));
            }
        }
    }

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, folder);
  json_builder_begin_object (builder);
  for (guint i = 0; i < order->len; i++)
    {
      const char *tag = g_ptr_array_index (order, i);

      json_builder_set_member_name (builder, tag);
      json_builder_add_int_value (builder, GPOINTER_TO_UINT (g_hash_table_lookup (counts, tag)));
    }
  json_builder_end_object (builder);
  json_builder_end_object (builder);

  root = json_builder_get_root (builder);
  json_generator_set_root (generator, root);
  return json_generator_to_data (generator, NULL);
}

static void
append_list (GString         *out,
             const GPtrArray *items)
{
  for (guint i = 0; i < items->len; i++)
    g_string_append_printf (out, "    %s\n", (const char *) g_ptr_array_index (items, i));
}

char *
gouache_dataset_report (const GouacheDataset *dataset,
                        int                   resolution,
                        int                   multiple,
                        const char           *trigger)
{
  GString *out = g_string_new (NULL);
  g_autoptr (GArray) buckets = gouache_dataset_buckets (resolution, multiple);
  g_autofree guint *counts = g_new0 (guint, buckets->len);
  guint n = dataset->images->len;

  g_string_append_printf (out, g_dngettext (GETTEXT_PACKAGE, "%u usable image in %s\n",
                                            "%u usable images in %s\n", n),
                          n, dataset->folder);
  if (dataset->unreadable->len > 0)
    {
      g_string_append_printf (out, g_dngettext (GETTEXT_PACKAGE, "%u unreadable file:\n",
                                                "%u unreadable files:\n",
                                                dataset->unreadable->len),
                              dataset->unreadable->len);
      append_list (out, dataset->unreadable);
    }
  if (dataset->too_small->len > 0)
    {
      g_string_append_printf (out, g_dngettext (GETTEXT_PACKAGE,
                                                "%u image too small (left out):\n",
                                                "%u images too small (left out):\n",
                                                dataset->too_small->len),
                              dataset->too_small->len);
      append_list (out, dataset->too_small);
    }
  if (dataset->duplicates->len > 0)
    {
      g_string_append_printf (out, g_dngettext (GETTEXT_PACKAGE,
                                                "%u duplicate (left out):\n",
                                                "%u duplicates (left out):\n",
                                                dataset->duplicates->len),
                              dataset->duplicates->len);
      append_list (out, dataset->duplicates);
    }
  if (dataset->missing_captions > 0 && trigger && trigger[0])
    g_string_append_printf (out, g_dngettext (GETTEXT_PACKAGE,
                                              "%u image has no caption file: it is captioned “%s”\n",
                                              "%u images have no caption file: they are captioned “%s”\n",
                                              dataset->missing_captions),
                            dataset->missing_captions, trigger);
  else if (dataset->missing_captions > 0)
    g_string_append_printf (out, g_dngettext (GETTEXT_PACKAGE,
                                              "%u image has no caption file\n",
                                              "%u images have no caption file\n",
                                              dataset->missing_captions),
                            dataset->missing_captions);

  for (guint i = 0; i < n; i++)
    {
      const GouacheDatasetImage *image = g_ptr_array_index (dataset->images, i);
      GouacheBucket b = gouache_dataset_bucket_for (buckets, image->width, image->height);

      for (guint k = 0; k < buckets->len; k++)
        if (g_array_index (buckets, GouacheBucket, k).width == b.width &&
            g_array_index (buckets, GouacheBucket, k).height == b.height)
          counts[k]++;
    }
  if (n > 0)
    {
      g_string_append_printf (out, _("Aspect ratios (buckets at %d pixels):\n"), resolution);
      for (guint k = 0; k < buckets->len; k++)
        if (counts[k] > 0)
          {
            GouacheBucket b = g_array_index (buckets, GouacheBucket, k);

            g_string_append_printf (out, g_dngettext (GETTEXT_PACKAGE, "    %d×%d: %u image\n",
                                                      "    %d×%d: %u images\n", counts[k]),
                                    b.width, b.height, counts[k]);
          }
    }
  return g_string_free (out, FALSE);
}
