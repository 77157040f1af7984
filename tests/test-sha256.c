/* SHA-256: model hashes in image metadata and checkpoint checks depend on it being exact. */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "gc-sha256.h"

static void
hash_string (const char *s, char hex[65])
{
  gc_sha256 ctx;
  unsigned char digest[32];
  gc_sha256_init (&ctx);
  gc_sha256_update (&ctx, s, strlen (s));
  gc_sha256_final (&ctx, digest);
  gc_sha256_hex (digest, hex);
}

static void
test_known_vectors (void)
{
  char hex[65];
  hash_string ("", hex);
  g_assert_cmpstr (hex, ==, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  hash_string ("abc", hex);
  g_assert_cmpstr (hex, ==, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  /* 56 bytes: the length no longer fits in the first block's padding */
  hash_string ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", hex);
  g_assert_cmpstr (hex, ==, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void
test_million_a (void)
{
  /* fed in uneven pieces, so every way of filling the block buffer is used */
  char *a = g_malloc (1000000);
  memset (a, 'a', 1000000);
  gc_sha256 ctx;
  unsigned char digest[32];
  char hex[65];
  gc_sha256_init (&ctx);
  size_t done = 0, piece = 1;
  while (done < 1000000)
    {
      size_t n = MIN (piece, 1000000 - done);
      gc_sha256_update (&ctx, a + done, n);
      done += n;
      piece = piece * 3 % 997 + 1;
    }
  gc_sha256_final (&ctx, digest);
  gc_sha256_hex (digest, hex);
  g_assert_cmpstr (hex, ==, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  g_free (a);
}

static void
test_file (void)
{
  g_autofree char *dir = g_dir_make_tmp ("gc-sha256-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "abc.txt", NULL);
  g_assert_true (g_file_set_contents (path, "abc", 3, NULL));
  char hex[65];
  gc_error err = { 0 };
  g_assert_cmpint (gc_sha256_file (path, hex, &err), ==, GC_OK);
  g_assert_cmpstr (hex, ==, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  /* a directory is not a model file: an I/O error that names it */
  g_assert_cmpint (gc_sha256_file (dir, hex, &err), ==, GC_ERR_IO);
  g_assert_nonnull (strstr (err.message, dir));
  g_assert_cmpint (g_remove (path), ==, 0);
  g_assert_cmpint (gc_sha256_file (path, hex, &err), ==, GC_ERR_IO);
  g_assert_nonnull (strstr (err.message, "No such file"));
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/core/sha256/vectors", test_known_vectors);
  g_test_add_func ("/core/sha256/million-a", test_million_a);
  g_test_add_func ("/core/sha256/file", test_file);
  return g_test_run ();
}
