/* File hashes: A1111's "Model hash" (sha256[:10]) and LoRA short hash (kohya's addnet hash,
 * [:12]), streamed in blocks, and the cache in $XDG_CACHE_HOME/gouache/hashes.ini. The cache
 * is shown to answer by changing a file's bytes behind its back while keeping its size,
 * modification time and inode: the cached (old) hash comes back until one of the three
 * changes. Also the GOUACHE_ERROR mapping of the core's status codes. */
#include <fcntl.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gc-sha256.h"
#include "gouache-error.h"
#include "gouache-file-hash.h"

#define ABC_SHA256 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

/* {"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} and 8 data bytes 00 01 … 07:
 * hashes computed with kohya's addnet_hash_safetensors() and hashlib in Python */
#define TINY_HEADER "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}"
#define TINY_ADDNET "8a851ff82ee7048ad09ec3847f1ddf44944104d2cbd17ef4e3db22c6785a0d45"
#define TINY_SHA256 "97e334fa932b978ebd8649b076c908a80df69cddeb2f3e394b967f06b9b6319f"

static char *cache_home;

static char *
cache_file (void)
{
  return g_build_filename (cache_home, "gouache", "hashes.ini", NULL);
}

static void
write_file (const char *path,
            const void *data,
            gsize       size)
{
  g_autoptr(GError) error = NULL;

  g_file_set_contents (path, data, (gssize) size, &error);
  g_assert_no_error (error);
}

static GBytes *
tiny_safetensors (void)
{
  GByteArray *bytes = g_byte_array_new ();
  guint8 length[8] = { 0 };
  guint64 n = strlen (TINY_HEADER);

  for (int i = 0; i < 8; i++)
    length[i] = (guint8) (n >> (8 * i));
  g_byte_array_append (bytes, length, 8);
  g_byte_array_append (bytes, (const guint8 *) TINY_HEADER, (guint) n);
  for (guint8 i = 0; i < 8; i++)
    g_byte_array_append (bytes, &i, 1);
  return g_byte_array_free_to_bytes (bytes);
}

/* Overwrites the file's bytes in place (same inode, same size) and puts its modification
 * time back to the nanosecond. */
static void
overwrite_in_place (const char *path,
                    const char *contents)
{
  struct stat before, after;
  struct timespec times[2];
  int fd;

  g_assert_cmpint (stat (path, &before), ==, 0);
  g_assert_cmpuint ((gsize) before.st_size, ==, strlen (contents));
  fd = open (path, O_WRONLY);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (write (fd, contents, strlen (contents)), ==, (gssize) strlen (contents));
  g_assert_cmpint (close (fd), ==, 0);
  times[0] = before.st_atim;
  times[1] = before.st_mtim;
  g_assert_cmpint (utimensat (AT_FDCWD, path, times, 0), ==, 0);
  g_assert_cmpint (stat (path, &after), ==, 0);
  g_assert_cmpuint (after.st_ino, ==, before.st_ino);
  g_assert_cmpint (after.st_mtim.tv_nsec, ==, before.st_mtim.tv_nsec);
}

static void
shift_mtime_by_one_ns (const char *path)
{
  struct stat st;
  struct timespec times[2];

  g_assert_cmpint (stat (path, &st), ==, 0);
  times[0] = st.st_atim;
  times[1] = st.st_mtim;
  if (++times[1].tv_nsec == 1000000000)
    {
      times[1].tv_nsec = 0;
      times[1].tv_sec++;
    }
  g_assert_cmpint (utimensat (AT_FDCWD, path, times, 0), ==, 0);
}

static char *
get_ok (const char          *path,
        GouacheFileHashKind  kind)
{
  g_autoptr(GError) error = NULL;
  char *hex = gouache_file_hash_get (path, kind, NULL, &error);

  g_assert_no_error (error);
  return hex;
}

static char *
compute_ok (const char          *path,
            GouacheFileHashKind  kind)
{
  g_autoptr(GError) error = NULL;
  char *hex = gouache_file_hash_compute (path, kind, NULL, &error);

  g_assert_no_error (error);
  return hex;
}

/* ---- hashing ---- */

static void
test_known_file (void)
{
  g_autofree char *dir = g_dir_make_tmp ("gouache-hash-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "abc.ckpt", NULL);
  g_autofree char *full = NULL;
  g_autofree char *model = NULL;
  g_autofree char *lora = NULL;
  g_autoptr(GError) error = NULL;

  write_file (path, "abc", 3);
  full = compute_ok (path, GOUACHE_FILE_HASH_SHA256);
  g_assert_cmpstr (full, ==, ABC_SHA256);
  model = gouache_file_hash_model_hash (path, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (model, ==, "ba7816bf8f");
  /* not safetensors: A1111 uses the whole file's hash for the LoRA short hash */
  lora = gouache_file_hash_lora_hash (path, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (lora, ==, "ba7816bf8f01");

  g_remove (path);
  g_rmdir (dir);
}

/* Several blocks, the last one partial: the same hash as one pass over the bytes. */
static void
test_many_blocks (void)
{
  g_autofree char *dir = g_dir_make_tmp ("gouache-hash-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "big.bin", NULL);
  gsize size = 3 * GOUACHE_FILE_HASH_BLOCK_SIZE + 17;
  g_autofree guint8 *data = g_malloc (size);
  g_autofree char *hex = NULL;
  unsigned char digest[32];
  char expected[65];
  gc_sha256 sha;

  for (gsize i = 0; i < size; i++)
    data[i] = (guint8) (i * 2654435761u >> 13);
  write_file (path, data, size);
  gc_sha256_init (&sha);
  gc_sha256_update (&sha, data, size);
  gc_sha256_final (&sha, digest);
  gc_sha256_hex (digest, expected);

  hex = compute_ok (path, GOUACHE_FILE_HASH_SHA256);
  g_assert_cmpstr (hex, ==, expected);

  g_remove (path);
  g_rmdir (dir);
}

static void
test_addnet (void)
{
  g_autofree char *dir = g_dir_make_tmp ("gouache-hash-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "ink.SafeTensors", NULL);
  g_autofree char *short_path = g_build_filename (dir, "short.safetensors", NULL);
  g_autofree char *bad_path = g_build_filename (dir, "bad.safetensors", NULL);
  g_autoptr(GBytes) tiny = tiny_safetensors ();
  g_autofree char *addnet = NULL;
  g_autofree char *full = NULL;
  g_autofree char *lora = NULL;
  g_autofree char *none = NULL;
  g_autoptr(GError) error = NULL;
  const guint8 past_end[12] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}', 0, 0 };

  write_file (path, g_bytes_get_data (tiny, NULL), g_bytes_get_size (tiny));
  addnet = compute_ok (path, GOUACHE_FILE_HASH_ADDNET);
  g_assert_cmpstr (addnet, ==, TINY_ADDNET);
  full = compute_ok (path, GOUACHE_FILE_HASH_SHA256);
  g_assert_cmpstr (full, ==, TINY_SHA256);
  lora = gouache_file_hash_lora_hash (path, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (lora, ==, "8a851ff82ee7");

  /* shorter than the 8-byte length, and a length that runs past the end */
  write_file (short_path, "1234", 4);
  none = gouache_file_hash_compute (short_path, GOUACHE_FILE_HASH_ADDNET, NULL, &error);
  g_assert_null (none);
  g_assert_error (error, GOUACHE_ERROR, GOUACHE_ERROR_FORMAT);
  g_clear_error (&error);
  write_file (bad_path, past_end, sizeof past_end);
  none = gouache_file_hash_lora_hash (bad_path, NULL, &error);
  g_assert_null (none);
  g_assert_error (error, GOUACHE_ERROR, GOUACHE_ERROR_FORMAT);

  g_remove (path);
  g_remove (short_path);
  g_remove (bad_path);
  g_rmdir (dir);
}

static void
test_missing_and_cancelled (void)
{
  g_autofree char *dir = g_dir_make_tmp ("gouache-hash-XXXXXX", NULL);
  g_autofree char *missing = g_build_filename (dir, "missing.safetensors", NULL);
  g_autofree char *path = g_build_filename (dir, "model.bin", NULL);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GKeyFile) keys = g_key_file_new ();
  g_autoptr(GFile) file = NULL;
  g_autofree char *uri = NULL;
  g_autofree char *cache = cache_file ();
  g_autoptr(GError) error = NULL;
  char *hex;

  hex = gouache_file_hash_get (missing, GOUACHE_FILE_HASH_SHA256, NULL, &error);
  g_assert_null (hex);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_clear_error (&error);

  write_file (path, "abc", 3);
  g_cancellable_cancel (cancellable);
  hex = gouache_file_hash_get (path, GOUACHE_FILE_HASH_SHA256, cancellable, &error);
  g_assert_null (hex);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  /* nothing was cached for it */
  file = g_file_new_for_path (path);
  uri = g_file_get_uri (file);
  g_key_file_load_from_file (keys, cache, G_KEY_FILE_NONE, NULL);
  g_assert_false (g_key_file_has_group (keys, uri));

  g_remove (path);
  g_rmdir (dir);
}

/* ---- the cache ---- */

static void
test_cache_answers_and_expires (void)
{
  g_autofree char *dir = g_dir_make_tmp ("gouache-hash-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "model [v2].ckpt", NULL);
  g_autofree char *cache = cache_file ();
  g_autoptr(GKeyFile) keys = g_key_file_new ();
  g_autoptr(GFile) file = g_file_new_for_path (path);
  g_autofree char *uri = g_file_get_uri (file);
  g_autoptr(GError) error = NULL;
  g_autofree char *first = NULL;
  g_autofree char *stale = NULL;
  g_autofree char *fresh = NULL;
  g_autofree char *rehashed = NULL;
  g_autofree char *resized = NULL;
  g_autofree char *stored = NULL;

  write_file (path, "abc", 3);
  first = get_ok (path, GOUACHE_FILE_HASH_SHA256);
  g_assert_cmpstr (first, ==, ABC_SHA256);

  g_key_file_load_from_file (keys, cache, G_KEY_FILE_NONE, &error);
  g_assert_no_error (error);
  g_assert_true (g_key_file_has_group (keys, uri));
  g_assert_cmpuint (g_key_file_get_uint64 (keys, uri, "size", NULL), ==, 3);
  stored = g_key_file_get_string (keys, uri, "sha256", NULL);
  g_assert_cmpstr (stored, ==, ABC_SHA256);

  /* new bytes, same size, time and inode: the cache answers, so the old hash comes back */
  overwrite_in_place (path, "xyz");
  stale = get_ok (path, GOUACHE_FILE_HASH_SHA256);
  g_assert_cmpstr (stale, ==, ABC_SHA256);
  fresh = compute_ok (path, GOUACHE_FILE_HASH_SHA256);
  g_assert_cmpstr (fresh, !=, ABC_SHA256);

  /* one nanosecond later: hashed again */
  shift_mtime_by_one_ns (path);
  rehashed = get_ok (path, GOUACHE_FILE_HASH_SHA256);
  g_assert_cmpstr (rehashed, ==, fresh);

  /* another size: hashed again */
  write_file (path, "abcd", 4);
  resized = get_ok (path, GOUACHE_FILE_HASH_SHA256);
  g_assert_cmpstr (resized, ==, "88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589");

  g_remove (path);
  g_rmdir (dir);
}

/* A file replaced by another with the same size and time is a new inode: hashed again. */
static void
test_cache_inode (void)
{
  g_autofree char *dir = g_dir_make_tmp ("gouache-hash-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "model.ckpt", NULL);
  g_autofree char *other = g_build_filename (dir, "other.ckpt", NULL);
  g_autofree char *first = NULL;
  g_autofree char *second = NULL;
  struct stat st;
  struct timespec times[2];

  write_file (path, "abc", 3);
  first = get_ok (path, GOUACHE_FILE_HASH_SHA256);
  g_assert_cmpint (stat (path, &st), ==, 0);

  write_file (other, "xyz", 3);
  times[0] = st.st_atim;
  times[1] = st.st_mtim;
  g_assert_cmpint (utimensat (AT_FDCWD, other, times, 0), ==, 0);
  g_assert_cmpint (g_rename (other, path), ==, 0);

  second = get_ok (path, GOUACHE_FILE_HASH_SHA256);
  g_assert_cmpstr (second, ==, "3608bca1e44ea6c4d268eb6db02260269892c0b42b86bbf1e77a6fa16c3c9282");

  g_remove (path);
  g_rmdir (dir);
}

/* Both kinds for one file share its group; a changed file drops the other kind's old hash. */
static void
test_cache_both_kinds (void)
{
  g_autofree char *dir = g_dir_make_tmp ("gouache-hash-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "style.safetensors", NULL);
  g_autoptr(GBytes) tiny = tiny_safetensors ();
  g_autoptr(GFile) file = g_file_new_for_path (path);
  g_autofree char *uri = g_file_get_uri (file);
  g_autofree char *cache = cache_file ();
  g_autoptr(GKeyFile) keys = g_key_file_new ();
  g_autofree char *addnet = NULL;
  g_autofree char *full = NULL;
  g_autofree char *again = NULL;

  write_file (path, g_bytes_get_data (tiny, NULL), g_bytes_get_size (tiny));
  addnet = get_ok (path, GOUACHE_FILE_HASH_ADDNET);
  full = get_ok (path, GOUACHE_FILE_HASH_SHA256);
  g_assert_cmpstr (addnet, ==, TINY_ADDNET);
  g_assert_cmpstr (full, ==, TINY_SHA256);
  g_assert_true (g_key_file_load_from_file (keys, cache, G_KEY_FILE_NONE, NULL));
  g_assert_true (g_key_file_has_key (keys, uri, "addnet", NULL));
  g_assert_true (g_key_file_has_key (keys, uri, "sha256", NULL));

  shift_mtime_by_one_ns (path);
  again = get_ok (path, GOUACHE_FILE_HASH_ADDNET);
  g_assert_cmpstr (again, ==, TINY_ADDNET);
  g_assert_true (g_key_file_load_from_file (keys, cache, G_KEY_FILE_NONE, NULL));
  g_assert_true (g_key_file_has_key (keys, uri, "addnet", NULL));
  g_assert_false (g_key_file_has_key (keys, uri, "sha256", NULL));

  g_remove (path);
  g_rmdir (dir);
}

/* Relative paths are cached under their absolute file:// URI. */
static void
test_cache_relative_path (void)
{
  g_autofree char *dir = g_dir_make_tmp ("gouache-hash-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "rel.ckpt", NULL);
  g_autofree char *cwd = g_get_current_dir ();
  g_autofree char *uri = g_filename_to_uri (path, NULL, NULL);
  g_autofree char *cache = cache_file ();
  g_autoptr(GKeyFile) keys = g_key_file_new ();
  g_autofree char *hex = NULL;

  write_file (path, "abc", 3);
  g_assert_cmpint (g_chdir (dir), ==, 0);
  hex = get_ok ("rel.ckpt", GOUACHE_FILE_HASH_SHA256);
  g_assert_cmpint (g_chdir (cwd), ==, 0);
  g_assert_cmpstr (hex, ==, ABC_SHA256);
  g_assert_true (g_key_file_load_from_file (keys, cache, G_KEY_FILE_NONE, NULL));
  g_assert_true (g_key_file_has_group (keys, uri));

  g_remove (path);
  g_rmdir (dir);
}

/* A damaged cache is ignored and rewritten; processes hashing at once all keep their entry. */
static void
test_cache_concurrent (void)
{
  enum { N_CHILDREN = 8 };
  g_autofree char *dir = g_dir_make_tmp ("gouache-hash-XXXXXX", NULL);
  g_autofree char *cache = cache_file ();
  g_autoptr(GKeyFile) keys = g_key_file_new ();
  g_autoptr(GError) error = NULL;
  char *paths[N_CHILDREN];
  pid_t pids[N_CHILDREN];

  write_file (cache, "[unterminated group\n\x01garbage", strlen ("[unterminated group\n\x01garbage"));

  for (int i = 0; i < N_CHILDREN; i++)
    {
      g_autofree char *name = g_strdup_printf ("model-%d.ckpt", i);
      g_autofree char *contents = g_strdup_printf ("contents of model %d", i);

      paths[i] = g_build_filename (dir, name, NULL);
      write_file (paths[i], contents, strlen (contents));
    }

  for (int i = 0; i < N_CHILDREN; i++)
    {
      pids[i] = fork ();
      g_assert_cmpint (pids[i], >=, 0);
      if (pids[i] == 0)
        {
          /* each child hashes every file, starting at its own */
          for (int j = 0; j < N_CHILDREN; j++)
            {
              char *hex = gouache_file_hash_get (paths[(i + j) % N_CHILDREN],
                                                 GOUACHE_FILE_HASH_SHA256, NULL, NULL);
              if (hex == NULL)
                _exit (1);
              g_free (hex);
            }
          _exit (0);
        }
    }
  for (int i = 0; i < N_CHILDREN; i++)
    {
      int status = 0;

      g_assert_cmpint (waitpid (pids[i], &status, 0), ==, pids[i]);
      g_assert_true (WIFEXITED (status));
      g_assert_cmpint (WEXITSTATUS (status), ==, 0);
    }

  g_key_file_load_from_file (keys, cache, G_KEY_FILE_NONE, &error);
  g_assert_no_error (error);
  for (int i = 0; i < N_CHILDREN; i++)
    {
      g_autofree char *uri = g_filename_to_uri (paths[i], NULL, NULL);
      g_autofree char *stored = g_key_file_get_string (keys, uri, "sha256", NULL);
      g_autofree char *expected = compute_ok (paths[i], GOUACHE_FILE_HASH_SHA256);

      g_assert_cmpstr (stored, ==, expected);
      g_remove (paths[i]);
      g_free (paths[i]);
    }
  g_rmdir (dir);
}

/* ---- errors ---- */

static void
test_error_from_gc (void)
{
  static const struct {
    gc_status status;
    GouacheError code;
  } pairs[] = {
    { GC_ERR_INVALID, GOUACHE_ERROR_INVALID },
    { GC_ERR_IO, GOUACHE_ERROR_IO },
    { GC_ERR_FORMAT, GOUACHE_ERROR_FORMAT },
    { GC_ERR_UNSUPPORTED, GOUACHE_ERROR_UNSUPPORTED },
    { GC_ERR_MISMATCH, GOUACHE_ERROR_MISMATCH },
    { GC_ERR_NOMEM, GOUACHE_ERROR_NOMEM },
    { GC_ERR_CANCELLED, GOUACHE_ERROR_CANCELLED },
  };
  gc_error err;
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) bare = NULL;

  for (gsize i = 0; i < G_N_ELEMENTS (pairs); i++)
    g_assert_cmpint (gouache_error_from_status (pairs[i].status), ==, pairs[i].code);

  gc_error_set (&err, GC_ERR_FORMAT, "tensor 'x': data_offsets [0, 9] run past the end");
  gouache_set_error_from_gc (&error, &err, "Loading “tiny.safetensors”");
  g_assert_error (error, GOUACHE_ERROR, GOUACHE_ERROR_FORMAT);
  g_assert_cmpstr (error->message, ==,
                   "Loading “tiny.safetensors”: tensor 'x': data_offsets [0, 9] run past the end");
  gouache_set_error_from_gc (&bare, &err, NULL);
  g_assert_cmpstr (bare->message, ==, "tensor 'x': data_offsets [0, 9] run past the end");
}

static void
remove_cache_home (void)
{
  g_autofree char *dir = g_build_filename (cache_home, "gouache", NULL);
  g_autoptr(GDir) listing = g_dir_open (dir, 0, NULL);
  const char *name;

  while (listing != NULL && (name = g_dir_read_name (listing)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_remove (path);
    }
  g_rmdir (dir);
  g_rmdir (cache_home);
}

int
main (int argc, char **argv)
{
  g_autofree char *cache_dir = NULL;
  int status;

  /* before anything reads it: GLib keeps the first value it sees */
  cache_home = g_dir_make_tmp ("gouache-cache-XXXXXX", NULL);
  g_setenv ("XDG_CACHE_HOME", cache_home, TRUE);
  g_setenv ("GIO_USE_VFS", "local", TRUE);
  cache_dir = g_build_filename (cache_home, "gouache", NULL);
  g_mkdir_with_parents (cache_dir, 0700);

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/app/file-hash/known-file", test_known_file);
  g_test_add_func ("/app/file-hash/many-blocks", test_many_blocks);
  g_test_add_func ("/app/file-hash/addnet", test_addnet);
  g_test_add_func ("/app/file-hash/missing-and-cancelled", test_missing_and_cancelled);
  g_test_add_func ("/app/file-hash/cache/answers-and-expires", test_cache_answers_and_expires);
  g_test_add_func ("/app/file-hash/cache/inode", test_cache_inode);
  g_test_add_func ("/app/file-hash/cache/both-kinds", test_cache_both_kinds);
  g_test_add_func ("/app/file-hash/cache/relative-path", test_cache_relative_path);
  g_test_add_func ("/app/file-hash/cache/concurrent", test_cache_concurrent);
  g_test_add_func ("/app/error/from-gc", test_error_from_gc);

  status = g_test_run ();
  g_assert_cmpstr (g_get_user_cache_dir (), ==, cache_home);
  remove_cache_home ();
  g_free (cache_home);
  return status;
}
