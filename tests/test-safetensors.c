/* Reading and writing .safetensors: round trips, byte-exact output, one refusal per rule a
 * hostile or damaged file can break, PyTorch pickles refused, and a full disk that costs the
 * user nothing (the old file stays, no partial file is left behind). */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gc-safetensors.h"

/* A file image: 8-byte little-endian header length, the header as given, data_size bytes. */
static GBytes *
make_file (const char *header, size_t data_size)
{
  size_t n = strlen (header);
  GByteArray *b = g_byte_array_new ();
  for (int i = 0; i < 8; i++)
    {
      guint8 byte = (guint8) ((guint64) n >> (8 * i));
      g_byte_array_append (b, &byte, 1);
    }
  g_byte_array_append (b, (const guint8 *) header, (guint) n);
  for (size_t i = 0; i < data_size; i++)
    {
      guint8 byte = (guint8) i;
      g_byte_array_append (b, &byte, 1);
    }
  return g_byte_array_free_to_bytes (b);
}

static gc_status
open_bytes (GBytes *bytes, gc_safetensors **file, gc_error *err)
{
  gsize size;
  const void *data = g_bytes_get_data (bytes, &size);
  return gc_safetensors_open_memory (file, data, size, err);
}

/* Checks that the header is refused with code and that the message contains every fragment. */
static void
assert_refused_with (const char *header, size_t data_size, gc_status code, const char *fragment1,
                     const char *fragment2)
{
  GBytes *bytes = make_file (header, data_size);
  gc_safetensors *file = NULL;
  gc_error err = { 0 };
  gc_status s = open_bytes (bytes, &file, &err);
  if (s != code || !strstr (err.message, fragment1) || (fragment2 && !strstr (err.message, fragment2)))
    g_error ("header %s: got '%s' (%d), expected '%s' and '%s' (%d)", header, err.message, s,
             fragment1, fragment2 ? fragment2 : "", code);
  g_assert_null (file);
  g_bytes_unref (bytes);
}

static void
assert_malformed (const char *header, size_t data_size, const char *fragment1,
                  const char *fragment2)
{
  assert_refused_with (header, data_size, GC_ERR_FORMAT, fragment1, fragment2);
}

static char *
temp_dir (void)
{
  char *dir = g_dir_make_tmp ("gc-safetensors-XXXXXX", NULL);
  g_assert_nonnull (dir);
  return dir;
}

static void
remove_dir (const char *dir)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  const char *name;
  while ((name = g_dir_read_name (d)))
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_remove (path);
    }
  g_dir_close (d);
  g_rmdir (dir);
}

static guint
count_files (const char *dir)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  guint n = 0;
  while (g_dir_read_name (d))
    n++;
  g_dir_close (d);
  return n;
}

static void
test_round_trip_every_dtype (void)
{
  g_autofree char *dir = temp_dir ();
  g_autofree char *path = g_build_filename (dir, "all.safetensors", NULL);
  enum { N = GC_DTYPE_COUNT + 2 };
  gc_st_entry entries[N];
  void *data[N];
  char names[N][16];
  for (int i = 0; i < GC_DTYPE_COUNT; i++)
    {
      /* every dtype as a [2, 3] tensor whose bytes count up */
      snprintf (names[i], sizeof names[i], "t.%s", gc_dtype_name ((gc_dtype) i));
      entries[i] = (gc_st_entry) { names[i], (gc_dtype) i, 2, { 2, 3 } };
      size_t bytes = 6 * gc_dtype_size ((gc_dtype) i);
      data[i] = g_malloc (bytes);
      for (size_t j = 0; j < bytes; j++)
        ((guint8 *) data[i])[j] = (guint8) (i * 16 + j);
    }
  /* a 0-D scalar (as LoRA alphas are stored) holds one element; a tensor may hold none */
  float alpha = 4.0f;
  entries[GC_DTYPE_COUNT] = (gc_st_entry) { "lora.alpha", GC_DTYPE_F32, 0, { 0 } };
  data[GC_DTYPE_COUNT] = &alpha;
  entries[GC_DTYPE_COUNT + 1] = (gc_st_entry) { "empty", GC_DTYPE_F16, 2, { 0, 5 } };
  data[GC_DTYPE_COUNT + 1] = NULL;
  const char *metadata[] = { "format", "pt", "ss_network_dim", "8" };
  gc_error err = { 0 };
  g_assert_cmpint (gc_safetensors_write (path, entries, (const void *const *) data, N, metadata, 2,
                                         &err), ==, GC_OK);

  gc_safetensors *file;
  g_assert_cmpint (gc_safetensors_open (&file, path, &err), ==, GC_OK);
  g_assert_cmpuint (gc_safetensors_count (file), ==, N);
  for (int i = 0; i < N; i++)
    {
      const gc_st_tensor *t = gc_safetensors_find (file, entries[i].name);
      g_assert_nonnull (t);
      g_assert_cmpstr (t->name, ==, entries[i].name);
      g_assert_cmpint (t->dtype, ==, entries[i].dtype);
      g_assert_cmpint (t->ndim, ==, entries[i].ndim);
      for (int d = 0; d < t->ndim; d++)
        g_assert_cmpint (t->shape[d], ==, entries[i].shape[d]);
      if (t->nbytes > 0)
        g_assert_cmpmem (t->data, t->nbytes, data[i], t->nbytes);
    }
  const gc_st_tensor *scalar = gc_safetensors_find (file, "lora.alpha");
  g_assert_cmpuint (scalar->nbytes, ==, 4);
  gc_weight w = gc_st_tensor_weight (scalar);
  g_assert_cmpint (w.ndim, ==, 0);
  g_assert_true (w.data == scalar->data);
  g_assert_cmpuint (gc_safetensors_find (file, "empty")->nbytes, ==, 0);
  g_assert_null (gc_safetensors_find (file, "t"));
  /* tensors come in the order of their offsets, which the writer made the name order */
  for (size_t i = 1; i < gc_safetensors_count (file); i++)
    g_assert_cmpstr (gc_safetensors_at (file, i - 1)->name, <, gc_safetensors_at (file, i)->name);
  g_assert_null (gc_safetensors_at (file, N));
  g_assert_cmpuint (gc_safetensors_metadata_count (file), ==, 2);
  g_assert_cmpstr (gc_safetensors_metadata (file, "ss_network_dim"), ==, "8");
  g_assert_cmpstr (gc_safetensors_metadata_key (file, 0), ==, "format");
  g_assert_cmpstr (gc_safetensors_metadata_value (file, 0), ==, "pt");
  g_assert_null (gc_safetensors_metadata (file, "missing"));
  /* the data section holds the tensors back to back, and ends the file */
  size_t data_size, total = 0;
  const guint8 *section = gc_safetensors_data_section (file, &data_size);
  for (size_t i = 0; i < gc_safetensors_count (file); i++)
    total += gc_safetensors_at (file, i)->nbytes;
  g_assert_cmpuint (data_size, ==, total);
  g_assert_true (gc_safetensors_at (file, 0)->data == section);
  g_assert_cmpuint (gc_safetensors_file_size (file), >, data_size + 8);
  gc_safetensors_close (file);
  for (int i = 0; i < GC_DTYPE_COUNT; i++)
    g_free (data[i]);
  remove_dir (dir);
}

static void
test_writer_bytes_exact (void)
{
  /* What Python's sdrand.write_safetensors makes of the same tensors: names sorted, compact
   * ASCII JSON with \u escapes, metadata in the given order and last, spaces to 8 bytes. */
  static const char expected_header[] =
    "{\"a\":{\"dtype\":\"F16\",\"shape\":[],\"data_offsets\":[0,2]},"
    "\"b\\u00e9\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[2,10]},"
    "\"__metadata__\":{\"k\":\"v\\n\",\"format\":\"pt\"}}      ";
  g_assert_cmpuint (sizeof expected_header - 1, ==, 160);
  GByteArray *expected = g_byte_array_new ();
  g_byte_array_append (expected, (const guint8 *) "\xa0\0\0\0\0\0\0\0", 8);
  g_byte_array_append (expected, (const guint8 *) expected_header, 160);
  g_byte_array_append (expected, (const guint8 *) "\x00\x3c\x00\x00\x80\x3f\x00\x00\x00\xc0", 10);

  g_autofree char *dir = temp_dir ();
  g_autofree char *path = g_build_filename (dir, "small.safetensors", NULL);
  gc_st_entry entries[] = {
    { "b\xc3\xa9", GC_DTYPE_F32, 1, { 2 } },
    { "a", GC_DTYPE_F16, 0, { 0 } },
  };
  const float b[2] = { 1.0f, -2.0f };
  const guint16 a = 0x3c00;
  const void *data[] = { b, &a };
  const char *metadata[] = { "k", "v\n", "format", "pt" };
  gc_error err = { 0 };
  g_assert_cmpint (gc_safetensors_write (path, entries, data, 2, metadata, 2, &err), ==, GC_OK);
  g_autofree char *contents = NULL;
  gsize length;
  g_assert_true (g_file_get_contents (path, &contents, &length, NULL));
  g_assert_cmpmem (contents, length, expected->data, expected->len);
  g_byte_array_unref (expected);

  /* no tensors and no metadata: "{}" and six spaces */
  g_assert_cmpint (gc_safetensors_write (path, NULL, NULL, 0, NULL, 0, &err), ==, GC_OK);
  g_free (contents);
  g_assert_true (g_file_get_contents (path, &contents, &length, NULL));
  g_assert_cmpmem (contents, length, "\x08\0\0\0\0\0\0\0{}      ", 16);
  remove_dir (dir);
}

static void
test_writer_streaming (void)
{
  g_autofree char *dir = temp_dir ();
  g_autofree char *path = g_build_filename (dir, "stream.safetensors", NULL);
  g_assert_true (g_file_set_contents (path, "old", 3, NULL));
  gc_st_entry entries[] = {
    { "z", GC_DTYPE_U8, 1, { 5 } },
    { "y", GC_DTYPE_I16, 1, { 3 } },
  };
  gc_safetensors_writer *w;
  gc_error err = { 0 };
  g_assert_cmpint (gc_safetensors_writer_begin (&w, path, entries, 2, NULL, 0, &err), ==, GC_OK);
  const size_t *order = gc_safetensors_writer_order (w);
  g_assert_cmpuint (order[0], ==, 1); /* "y" first */
  g_assert_cmpuint (order[1], ==, 0);
  const gint16 y[3] = { -1, 2, 300 };
  g_assert_cmpint (gc_safetensors_writer_write (w, y, 4, &err), ==, GC_OK);
  g_assert_cmpint (gc_safetensors_writer_write (w, (const guint8 *) y + 4, 2, &err), ==, GC_OK);
  g_assert_cmpint (gc_safetensors_writer_write (w, "abc", 3, &err), ==, GC_OK);
  /* until finish, the old file is what readers see */
  g_autofree char *contents = NULL;
  g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  g_assert_cmpstr (contents, ==, "old");
  /* more bytes than the tensors hold is refused */
  g_assert_cmpint (gc_safetensors_writer_write (w, "defg", 4, &err), ==, GC_ERR_INVALID);
  g_assert_cmpint (gc_safetensors_writer_write (w, "de", 2, &err), ==, GC_OK);
  g_assert_cmpint (gc_safetensors_writer_finish (w, &err), ==, GC_OK);
  g_assert_cmpuint (count_files (dir), ==, 1);

  gc_safetensors *file;
  g_assert_cmpint (gc_safetensors_open (&file, path, &err), ==, GC_OK);
  g_assert_cmpmem (gc_safetensors_find (file, "y")->data, 6, y, 6);
  g_assert_cmpmem (gc_safetensors_find (file, "z")->data, 5, "abcde", 5);
  gc_safetensors_close (file);

  /* too few bytes: refused at finish, the file written before stays, no temporary is left */
  g_assert_cmpint (gc_safetensors_writer_begin (&w, path, entries, 2, NULL, 0, &err), ==, GC_OK);
  g_assert_cmpint (gc_safetensors_writer_write (w, y, 6, &err), ==, GC_OK);
  g_assert_cmpint (gc_safetensors_writer_finish (w, &err), ==, GC_ERR_INVALID);
  g_assert_nonnull (strstr (err.message, "only 6 of 11 bytes"));
  g_assert_cmpuint (count_files (dir), ==, 1);
  g_assert_cmpint (gc_safetensors_open (&file, path, &err), ==, GC_OK);
  gc_safetensors_close (file);

  /* abandoning a file leaves nothing behind */
  g_assert_cmpint (gc_safetensors_writer_begin (&w, path, entries, 2, NULL, 0, &err), ==, GC_OK);
  gc_safetensors_writer_abort (w);
  g_assert_cmpuint (count_files (dir), ==, 1);
  remove_dir (dir);
}

static void
test_writer_refuses_bad_requests (void)
{
  g_autofree char *dir = temp_dir ();
  g_autofree char *path = g_build_filename (dir, "bad.safetensors", NULL);
  gc_safetensors_writer *w;
  gc_error err = { 0 };
  gc_st_entry twice[] = { { "a", GC_DTYPE_F16, 0, { 0 } }, { "a", GC_DTYPE_F32, 0, { 0 } } };
  g_assert_cmpint (gc_safetensors_writer_begin (&w, path, twice, 2, NULL, 0, &err), ==,
                   GC_ERR_INVALID);
  g_assert_nonnull (strstr (err.message, "'a' is given twice"));
  gc_st_entry bad_utf8[] = { { "\xff", GC_DTYPE_F16, 0, { 0 } } };
  g_assert_cmpint (gc_safetensors_writer_begin (&w, path, bad_utf8, 1, NULL, 0, &err), ==,
                   GC_ERR_INVALID);
  g_assert_nonnull (strstr (err.message, "UTF-8"));
  gc_st_entry negative[] = { { "n", GC_DTYPE_F16, 1, { -1 } } };
  g_assert_cmpint (gc_safetensors_writer_begin (&w, path, negative, 1, NULL, 0, &err), ==,
                   GC_ERR_INVALID);
  gc_st_entry reserved[] = { { "__metadata__", GC_DTYPE_F16, 0, { 0 } } };
  g_assert_cmpint (gc_safetensors_writer_begin (&w, path, reserved, 1, NULL, 0, &err), ==,
                   GC_ERR_INVALID);
  const char *metadata[] = { "k", "1", "k", "2" };
  g_assert_cmpint (gc_safetensors_writer_begin (&w, path, NULL, 0, metadata, 2, &err), ==,
                   GC_ERR_INVALID);
  /* a folder that does not exist: an I/O error naming the file */
  g_autofree char *nowhere = g_build_filename (dir, "missing", "x.safetensors", NULL);
  g_assert_cmpint (gc_safetensors_writer_begin (&w, nowhere, NULL, 0, NULL, 0, &err), ==,
                   GC_ERR_IO);
  g_assert_nonnull (strstr (err.message, nowhere));
  g_assert_cmpuint (count_files (dir), ==, 0);
  remove_dir (dir);
}

static void
test_malformed_headers (void)
{
  const char *ok_entry = "\"a\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,12]}";
  g_autofree char *ok = g_strdup_printf ("{%s}", ok_entry);
  gc_safetensors *file;
  gc_error err = { 0 };
  GBytes *bytes = make_file (ok, 12);
  g_assert_cmpint (open_bytes (bytes, &file, &err), ==, GC_OK);
  gc_safetensors_close (file);
  g_bytes_unref (bytes);

  assert_malformed ("{\"a\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,12]", 12,
                    "invalid JSON", NULL);
  assert_malformed ("[]", 0, "not a JSON object", NULL);
  assert_malformed ("{\"a\":[]}", 0, "tensor 'a'", "not an object");
  assert_malformed ("{\"a\":{\"dtype\":\"F16\",\"data_offsets\":[0,12]}}", 12, "tensor 'a'",
                    "'shape' is missing");
  assert_malformed ("{\"a\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,12],"
                    "\"extra\":1}}", 12, "tensor 'a'", "unexpected field 'extra'");
  assert_malformed ("{\"a\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,12],"
                    "\"dtype\":\"F16\"}}", 12, "tensor 'a'", "twice");
  assert_malformed ("{\"a\":{\"dtype\":16,\"shape\":[2,3],\"data_offsets\":[0,12]}}", 12,
                    "tensor 'a'", "dtype is not a string");
  assert_malformed ("{\"a\":{\"dtype\":\"F17\",\"shape\":[2,3],\"data_offsets\":[0,12]}}", 12,
                    "tensor 'a'", "unknown dtype 'F17'");
  assert_malformed ("{\"a\":{\"dtype\":\"F16\",\"shape\":6,\"data_offsets\":[0,12]}}", 12,
                    "tensor 'a'", "shape is not a list");
  assert_malformed ("{\"a\":{\"dtype\":\"F16\",\"shape\":[2,-3],\"data_offsets\":[0,12]}}", 12,
                    "tensor 'a'", "negative");
  assert_malformed ("{\"a\":{\"dtype\":\"F16\",\"shape\":[2,3.0],\"data_offsets\":[0,12]}}", 12,
                    "tensor 'a'", "not an integer");
  assert_malformed ("{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],"
                    "\"data_offsets\":[0,1]}}", 1, "tensor 'a'", "9 dimensions");
  assert_malformed ("{\"a\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0]}}", 12,
                    "tensor 'a'", "data_offsets is not a list of two");
  assert_malformed ("{\"a\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[-1,12]}}", 12,
                    "tensor 'a'", "data_offsets is not a list of two");
  assert_malformed ("{\"a\":{\"dtype\":\"F16\",\"shape\":[0],\"data_offsets\":[12,0]}}", 12,
                    "tensor 'a'", "end before they begin");
  assert_malformed ("{\"a\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[4,16]}}", 12,
                    "tensor 'a'", "run past the end of the 12-byte data section");
  assert_malformed ("{\"a\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,10]}}", 12,
                    "tensor 'a'", "hold 10 bytes, but shape [2, 3] of F16 needs 12");
  /* 2⁶² × 2⁶² elements: the product must not wrap around to a small, matching size */
  assert_malformed ("{\"a\":{\"dtype\":\"U8\",\"shape\":[4611686018427387904,4611686018427387904,"
                    "0],\"data_offsets\":[0,0]}}", 0, "tensor 'a'", "overflows");
  assert_malformed ("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                    "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[2,6]}}", 6,
                    "tensor 'b'", "overlap those of tensor 'a'");
  assert_malformed ("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                    "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2,
                    "tensor 'a'", "appears twice");
  assert_malformed ("{\"a\\u0000b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
                    "tensor 'a", "NUL");
  assert_malformed ("{\"__metadata__\":[]}", 0, "__metadata__ is not an object", NULL);
  assert_malformed ("{\"__metadata__\":{\"n\":1}}", 0, "__metadata__ value of 'n'",
                    "not a string");
  assert_malformed ("{\"__metadata__\":{\"n\":\"1\",\"n\":\"2\"}}", 0, "'n' appears twice", NULL);
  assert_malformed ("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "two __metadata__", NULL);
  /* a real but unusable type is not damage: unsupported, and said so */
  assert_refused_with ("{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2,
                       GC_ERR_UNSUPPORTED, "tensor 'a'", "F8_E4M3 is not supported");
}

static void
test_header_length_bounds (void)
{
  gc_safetensors *file;
  gc_error err = { 0 };
  /* 2⁴⁰ bytes of header: refused before anything is allocated */
  const guint8 huge[16] = { 0, 0, 0, 0, 0, 1, 0, 0, '{', '}' };
  g_assert_cmpint (gc_safetensors_open_memory (&file, huge, sizeof huge, &err), ==, GC_ERR_FORMAT);
  g_assert_nonnull (strstr (err.message, "100 MiB"));
  const guint8 past[10] = { 20, 0, 0, 0, 0, 0, 0, 0, '{', '}' };
  g_assert_cmpint (gc_safetensors_open_memory (&file, past, sizeof past, &err), ==, GC_ERR_FORMAT);
  g_assert_nonnull (strstr (err.message, "runs past the end of the 10-byte file"));
  /* a header length whose low bytes are the pickle opcode 0x80 0x02 is still safetensors */
  GString *header = g_string_new ("{}");
  while (header->len < 0x280)
    g_string_append_c (header, ' ');
  GBytes *bytes = make_file (header->str, 0);
  g_assert_cmpmem (g_bytes_get_data (bytes, NULL), 2, "\x80\x02", 2);
  g_assert_cmpint (open_bytes (bytes, &file, &err), ==, GC_OK);
  g_assert_cmpuint (gc_safetensors_count (file), ==, 0);
  gc_safetensors_close (file);
  g_bytes_unref (bytes);
  g_string_free (header, TRUE);
}

static void
test_truncated_files (void)
{
  g_autofree char *dir = temp_dir ();
  g_autofree char *path = g_build_filename (dir, "model.safetensors", NULL);
  gc_st_entry entry = { "w", GC_DTYPE_F32, 1, { 64 } };
  float values[64] = { 0 };
  const void *data[] = { values };
  gc_error err = { 0 };
  g_assert_cmpint (gc_safetensors_write (path, &entry, data, 1, NULL, 0, &err), ==, GC_OK);
  g_autofree char *contents = NULL;
  gsize length;
  g_assert_true (g_file_get_contents (path, &contents, &length, NULL));

  /* an interrupted download: every cut is refused with what is wrong, naming the file */
  struct {
    gsize keep;
    const char *fragment;
  } cuts[] = {
    { 0, "empty" },
    { 5, "only 5 bytes" },
    { 8, "runs past the end" },
    { 30, "runs past the end" },
    { length - 1, "tensor 'w': data_offsets [0, 256] run past the end" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cuts); i++)
    {
      g_assert_true (g_file_set_contents (path, contents, (gssize) cuts[i].keep, NULL));
      gc_safetensors *file = NULL;
      g_assert_cmpint (gc_safetensors_open (&file, path, &err), ==, GC_ERR_FORMAT);
      g_assert_null (file);
      if (!strstr (err.message, cuts[i].fragment) || !strstr (err.message, path))
        g_error ("cut at %zu: '%s'", cuts[i].keep, err.message);
    }
  remove_dir (dir);
}

static void
test_pytorch_refused (void)
{
  g_autofree char *dir = temp_dir ();
  /* a protocol-2 pickle as torch.save wrote before 1.6, and the zip archive it writes since */
  const char pickle[] = "\x80\x02\x8a\x0al\xfc\x9c" "F\xf9 j\xa8P\x19.\x80\x02M\xe9\x03.";
  const char zip[] = "PK\x03\x04\x00\x00\x08\x08\x00\x00" "archive/data.pkl";
  struct {
    const char *name;
    const char *bytes;
    gsize size;
  } files[] = {
    { "model.ckpt", pickle, sizeof pickle - 1 },
    { "model.pt", zip, sizeof zip - 1 },
    { "tiny.pth", "\x80\x05", 2 },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *path = g_build_filename (dir, files[i].name, NULL);
      g_assert_true (g_file_set_contents (path, files[i].bytes, (gssize) files[i].size, NULL));
      gc_safetensors *file = NULL;
      gc_error err = { 0 };
      g_assert_cmpint (gc_safetensors_open (&file, path, &err), ==, GC_ERR_UNSUPPORTED);
      g_assert_null (file);
      g_assert_nonnull (strstr (err.message, path));
      g_assert_nonnull (strstr (err.message, "PyTorch pickle"));
      g_assert_nonnull (strstr (err.message, "arbitrary code"));
      g_assert_nonnull (strstr (err.message, "Convert it to .safetensors"));
    }
  remove_dir (dir);
}

static void
test_unreadable_paths (void)
{
  g_autofree char *dir = temp_dir ();
  gc_safetensors *file = NULL;
  gc_error err = { 0 };
  g_assert_cmpint (gc_safetensors_open (&file, dir, &err), ==, GC_ERR_IO);
  g_assert_nonnull (strstr (err.message, dir));
  g_assert_nonnull (strstr (err.message, g_strerror (EISDIR)));
  g_autofree char *missing = g_build_filename (dir, "missing.safetensors", NULL);
  g_assert_cmpint (gc_safetensors_open (&file, missing, &err), ==, GC_ERR_IO);
  g_assert_nonnull (strstr (err.message, missing));
  g_assert_nonnull (strstr (err.message, g_strerror (ENOENT)));
  g_assert_null (file);
  remove_dir (dir);
}

/* Writes path in a child process whose files may not grow past limit bytes, as on a full
 * disk; returns the child's status and message through a pipe. */
static gc_status
write_with_file_size_limit (const char *path, rlim_t limit, const gc_st_entry *entry,
                            const void *data, char message[GC_ERROR_MESSAGE_MAX])
{
  int fds[2];
  g_assert_cmpint (pipe (fds), ==, 0);
  pid_t pid = fork ();
  g_assert_cmpint (pid, >=, 0);
  if (pid == 0)
    {
      close (fds[0]);
      /* beyond the limit write() fails with EFBIG instead of the process being killed */
      signal (SIGXFSZ, SIG_IGN);
      struct rlimit rl = { limit, limit };
      setrlimit (RLIMIT_FSIZE, &rl);
      gc_error err = { 0 };
      const void *datas[] = { data };
      gc_safetensors_write (path, entry, datas, 1, NULL, 0, &err);
      ssize_t n = write (fds[1], &err, sizeof err);
      _exit (n == (ssize_t) sizeof err ? 0 : 1);
    }
  close (fds[1]);
  gc_error err = { 0 };
  g_assert_cmpint (read (fds[0], &err, sizeof err), ==, sizeof err);
  close (fds[0]);
  int status;
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  g_assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
  memcpy (message, err.message, GC_ERROR_MESSAGE_MAX);
  return err.code;
}

static void
test_full_disk (void)
{
  g_autofree char *dir = temp_dir ();
  g_autofree char *path = g_build_filename (dir, "model.safetensors", NULL);
  g_assert_true (g_file_set_contents (path, "the previous model", -1, NULL));
  gc_st_entry entry = { "big", GC_DTYPE_F32, 2, { 1024, 1024 } }; /* 4 MiB */
  float *data = g_malloc0 (4 << 20);
  char message[GC_ERROR_MESSAGE_MAX];
  /* the limit falls in the data, and then in the header */
  rlim_t limits[] = { 1 << 20, 16 };
  for (gsize i = 0; i < G_N_ELEMENTS (limits); i++)
    {
      gc_status s = write_with_file_size_limit (path, limits[i], &entry, data, message);
      g_assert_cmpint (s, ==, GC_ERR_IO);
      g_assert_nonnull (strstr (message, "not enough disk space"));
      g_assert_nonnull (strstr (message, path));
      g_autofree char *contents = NULL;
      g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
      g_assert_cmpstr (contents, ==, "the previous model");
      g_assert_cmpuint (count_files (dir), ==, 1); /* no temporary file left */
    }
  g_free (data);
  remove_dir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/core/safetensors/round-trip", test_round_trip_every_dtype);
  g_test_add_func ("/core/safetensors/writer/bytes", test_writer_bytes_exact);
  g_test_add_func ("/core/safetensors/writer/streaming", test_writer_streaming);
  g_test_add_func ("/core/safetensors/writer/bad-requests", test_writer_refuses_bad_requests);
  g_test_add_func ("/core/safetensors/writer/full-disk", test_full_disk);
  g_test_add_func ("/core/safetensors/malformed", test_malformed_headers);
  g_test_add_func ("/core/safetensors/header-length", test_header_length_bounds);
  g_test_add_func ("/core/safetensors/truncated", test_truncated_files);
  g_test_add_func ("/core/safetensors/pytorch", test_pytorch_refused);
  g_test_add_func ("/core/safetensors/unreadable", test_unreadable_paths);
  return g_test_run ();
}
