/* Datasets: scanning a folder (formats, unreadable files, images too small, duplicates,
 * captions), the report, captions with a trigger word, aspect-ratio buckets, loading into a
 * bucket, kohya's tag frequencies, the dataset hash. */
#include <gdk-pixbuf/gdk-pixbuf.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "gouache-dataset.h"

typedef struct {
  char *dir;
} fixture;

/* A solid image, left half `left`, right half `right` (RGB bytes), with alpha when given. */
static void
save_image (const char *dir, const char *name, const char *type, int width, int height,
            const guint8 left[3], const guint8 right[3], int alpha)
{
  g_autoptr (GdkPixbuf) pixbuf = gdk_pixbuf_new (GDK_COLORSPACE_RGB, alpha >= 0, 8, width, height);
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr (GError) error = NULL;
  int n = gdk_pixbuf_get_n_channels (pixbuf), stride = gdk_pixbuf_get_rowstride (pixbuf);
  guchar *pixels = gdk_pixbuf_get_pixels (pixbuf);
  for (int y = 0; y < height; y++)
    for (int x = 0; x < width; x++)
      {
        guchar *p = pixels + y * stride + x * n;
        const guint8 *c = x < width / 2 ? left : right;
        p[0] = c[0], p[1] = c[1], p[2] = c[2];
        if (alpha >= 0)
          p[3] = (guchar) alpha;
      }
  gdk_pixbuf_save (pixbuf, path, type, &error, NULL);
  g_assert_no_error (error);
}

static void
write_file (const char *dir, const char *name, const char *text)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr (GError) error = NULL;
  g_file_set_contents (path, text, -1, &error);
  g_assert_no_error (error);
}

static const guint8 red[3] = { 255, 0, 0 }, blue[3] = { 0, 0, 255 }, green[3] = { 0, 255, 0 };

static void
fixture_set_up (fixture *f, gconstpointer data)
{
  f->dir = g_dir_make_tmp ("test-dataset-XXXXXX", NULL);
  save_image (f->dir, "a-wide.png", "png", 512, 256, red, blue, -1);
  save_image (f->dir, "b-tall.png", "png", 256, 512, blue, red, -1);
  save_image (f->dir, "c-square.jpg", "jpeg", 300, 300, green, green, -1);
  save_image (f->dir, "d-clear.png", "png", 256, 256, red, red, 0);
  save_image (f->dir, "e-small.png", "png", 64, 64, red, red, -1);
  save_image (f->dir, "f-copy.png", "png", 512, 256, red, blue, -1); /* same bytes as a-wide */
  write_file (f->dir, "g-broken.jpg", "not a picture");
  write_file (f->dir, "notes.md", "ignored");
  write_file (f->dir, "a-wide.txt", "  red, blue, wide  \n");
  write_file (f->dir, "b-tall.txt", "ink, tall");
}

static void
fixture_tear_down (fixture *f, gconstpointer data)
{
  g_autoptr (GDir) dir = g_dir_open (f->dir, 0, NULL);
  const char *name;
  while ((name = g_dir_read_name (dir)))
    {
      g_autofree char *path = g_build_filename (f->dir, name, NULL);
      g_remove (path);
    }
  g_rmdir (f->dir);
  g_free (f->dir);
}

static GouacheDataset *
scan (fixture *f)
{
  g_autoptr (GError) error = NULL;
  GouacheDataset *d = gouache_dataset_scan (f->dir, 128, NULL, &error);
  g_assert_no_error (error);
  return d;
}

static void
test_scan (fixture *f, gconstpointer data)
{
  g_autoptr (GouacheDataset) d = scan (f);
  g_assert_cmpuint (d->images->len, ==, 4);
  const char *names[] = { "a-wide.png", "b-tall.png", "c-square.jpg", "d-clear.png" };
  for (guint i = 0; i < 4; i++)
    g_assert_cmpstr (((GouacheDatasetImage *) g_ptr_array_index (d->images, i))->name, ==, names[i]);
  GouacheDatasetImage *wide = g_ptr_array_index (d->images, 0);
  g_assert_cmpint (wide->width, ==, 512);
  g_assert_cmpint (wide->height, ==, 256);
  g_assert_cmpstr (wide->caption, ==, "red, blue, wide");
  g_assert_cmpuint (strlen (wide->sha256), ==, 64);
  g_assert_cmpuint (d->unreadable->len, ==, 1);
  g_assert_true (g_str_has_prefix (g_ptr_array_index (d->unreadable, 0), "g-broken.jpg: "));
  g_assert_cmpuint (d->too_small->len, ==, 1);
  g_assert_cmpstr (g_ptr_array_index (d->too_small, 0), ==, "e-small.png (64×64)");
  g_assert_cmpuint (d->duplicates->len, ==, 1);
  g_assert_cmpstr (g_ptr_array_index (d->duplicates, 0), ==, "f-copy.png = a-wide.png");
  g_assert_cmpuint (d->missing_captions, ==, 2);

  /* the hash follows the images and captions, nothing else */
  g_autofree char *hash = g_strdup (d->hash);
  write_file (f->dir, "other.md", "still ignored");
  g_autoptr (GouacheDataset) again = scan (f);
  g_assert_cmpstr (again->hash, ==, hash);
  write_file (f->dir, "c-square.txt", "green");
  g_autoptr (GouacheDataset) captioned = scan (f);
  g_assert_cmpstr (captioned->hash, !=, hash);
  g_assert_cmpuint (captioned->missing_captions, ==, 1);
}

static void
test_missing_folder (void)
{
  g_autoptr (GError) error = NULL;
  g_assert_null (gouache_dataset_scan ("/nonexistent/gouache-dataset", 64, NULL, &error));
  g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
}

static void
test_captions (fixture *f, gconstpointer data)
{
  g_autoptr (GouacheDataset) d = scan (f);
  GouacheDatasetImage *wide = g_ptr_array_index (d->images, 0), *square = g_ptr_array_index (d->images, 2);
  g_autofree char *a = gouache_dataset_caption (wide, "inkwash");
  g_autofree char *b = gouache_dataset_caption (wide, "blue");
  g_autofree char *c = gouache_dataset_caption (square, "inkwash");
  g_autofree char *e = gouache_dataset_caption (square, NULL);
  g_assert_cmpstr (a, ==, "inkwash, red, blue, wide");
  g_assert_cmpstr (b, ==, "red, blue, wide");
  g_assert_cmpstr (c, ==, "inkwash");
  g_assert_cmpstr (e, ==, "");
}

static void
test_buckets (void)
{
  g_autoptr (GArray) buckets = gouache_dataset_buckets (512, 64);
  gboolean square = FALSE;
  for (guint i = 0; i < buckets->len; i++)
    {
      GouacheBucket b = g_array_index (buckets, GouacheBucket, i);
      g_assert_cmpint (b.width % 64, ==, 0);
      g_assert_cmpint (b.height % 64, ==, 0);
      g_assert_cmpint ((gint64) b.width * b.height, <=, 512 * 512);
      g_assert_cmpint (MIN (b.width, b.height), >=, 256);
      g_assert_cmpint (MAX (b.width, b.height), <=, 1024);
      square = square || (b.width == 512 && b.height == 512);
      if (i > 0)
        g_assert_cmpfloat ((double) b.width / b.height, >,
                           (double) g_array_index (buckets, GouacheBucket, i - 1).width
                             / g_array_index (buckets, GouacheBucket, i - 1).height);
    }
  g_assert_true (square);
  GouacheBucket b = gouache_dataset_bucket_for (buckets, 300, 300);
  g_assert_cmpint (b.width, ==, 512);
  g_assert_cmpint (b.height, ==, 512);
  b = gouache_dataset_bucket_for (buckets, 1024, 512);
  g_assert_cmpfloat (fabs ((double) b.width / b.height - 2), <=, 0.2 + 1e-9);
  b = gouache_dataset_bucket_for (buckets, 512, 1024);
  g_assert_cmpfloat (fabs ((double) b.height / b.width - 2), <=, 0.2 + 1e-9);
  /* tiny models: one 64 × 64 bucket */
  g_autoptr (GArray) tiny = gouache_dataset_buckets (64, 64);
  g_assert_cmpuint (tiny->len, ==, 1);
}

static void
test_load (fixture *f, gconstpointer data)
{
  g_autoptr (GouacheDataset) d = scan (f);
  g_autoptr (GError) error = NULL;
  /* a 2:1 image into a square bucket: scaled to cover it, the centre kept (both halves) */
  GouacheBucket bucket = { 128, 128 };
  g_autofree float *wide = gouache_dataset_load (g_ptr_array_index (d->images, 0), bucket, &error);
  g_assert_no_error (error);
  /* left edge red, right edge blue, in −1…1 */
  g_assert_cmpfloat (wide[0 * 128 * 128 + 64 * 128 + 0], >, 0.95);
  g_assert_cmpfloat (wide[2 * 128 * 128 + 64 * 128 + 0], <, -0.95);
  g_assert_cmpfloat (wide[0 * 128 * 128 + 64 * 128 + 127], <, -0.95);
  g_assert_cmpfloat (wide[2 * 128 * 128 + 64 * 128 + 127], >, 0.95);
  /* transparency becomes white */
  g_autofree float *clear = gouache_dataset_load (g_ptr_array_index (d->images, 3), bucket, &error);
  g_assert_no_error (error);
  for (int c = 0; c < 3; c++)
    g_assert_cmpfloat (clear[c * 128 * 128 + 40 * 128 + 40], >, 0.99);
  /* a JPEG, smaller than the bucket */
  GouacheBucket big = { 320, 320 };
  g_autofree float *square = gouache_dataset_load (g_ptr_array_index (d->images, 2), big, &error);
  g_assert_no_error (error);
  g_assert_cmpfloat (square[1 * 320 * 320 + 160 * 320 + 160], >, 0.9);
}

static void
test_tag_frequency (fixture *f, gconstpointer data)
{
  g_autoptr (GouacheDataset) d = scan (f);
  g_autofree char *json = gouache_dataset_tag_frequency (d, "inkwash");
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  json_parser_load_from_data (parser, json, -1, &error);
  g_assert_no_error (error);
  g_autofree char *folder = g_path_get_basename (f->dir);
  JsonObject *tags = json_object_get_object_member (json_node_get_object (json_parser_get_root (parser)), folder);
  g_assert_nonnull (tags);
  g_assert_cmpint (json_object_get_int_member (tags, "inkwash"), ==, 4);
  g_assert_cmpint (json_object_get_int_member (tags, "red"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (tags, "tall"), ==, 1);
  g_assert_false (json_object_has_member (tags, ""));
}

static void
test_report (fixture *f, gconstpointer data)
{
  g_autoptr (GouacheDataset) d = scan (f);
  g_autofree char *report = gouache_dataset_report (d, 512, 64, "inkwash");
  g_test_message ("%s", report);
  g_assert_nonnull (strstr (report, "4 usable images"));
  g_assert_nonnull (strstr (report, "1 unreadable file:\n    g-broken.jpg"));
  g_assert_nonnull (strstr (report, "1 image too small (left out):\n    e-small.png (64×64)"));
  g_assert_nonnull (strstr (report, "1 duplicate (left out):\n    f-copy.png = a-wide.png"));
  g_assert_nonnull (strstr (report, "2 images have no caption file: they are captioned “inkwash”"));
  g_assert_nonnull (strstr (report, "512×512: 2 images"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/app/dataset/scan", fixture, NULL, fixture_set_up, test_scan, fixture_tear_down);
  g_test_add_func ("/app/dataset/missing-folder", test_missing_folder);
  g_test_add ("/app/dataset/captions", fixture, NULL, fixture_set_up, test_captions,
              fixture_tear_down);
  g_test_add_func ("/app/dataset/buckets", test_buckets);
  g_test_add ("/app/dataset/load", fixture, NULL, fixture_set_up, test_load, fixture_tear_down);
  g_test_add ("/app/dataset/tag-frequency", fixture, NULL, fixture_set_up, test_tag_frequency,
              fixture_tear_down);
  g_test_add ("/app/dataset/report", fixture, NULL, fixture_set_up, test_report,
              fixture_tear_down);
  return g_test_run ();
}
