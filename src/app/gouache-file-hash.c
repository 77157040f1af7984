/* gouache-file-hash.c: SHA-256 hashes of model files, cached across runs
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The cache is a GKeyFile:
 *
 *   [file:///home/me/models/v1-5-pruned-emaonly.safetensors]
 *   size=4265146304
 *   mtime-ns=1700000000123456789
 *   inode=1234567
 *   sha256=6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa
 *
 * Any process may read it at any time: it is only ever replaced whole (written to a temporary
 * file, synced, renamed). Writers take an flock() on hashes.ini.lock, read the current file,
 * change their one group and write it back, so two processes that hash different files at
 * the same time both keep their entry.
 */

#define G_LOG_DOMAIN "gouache-file-hash"

#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "gc-sha256.h"
#include "gouache-error.h"
#include "gouache-file-hash.h"

#define STAMP_ATTRIBUTES G_FILE_ATTRIBUTE_STANDARD_SIZE "," \
                         G_FILE_ATTRIBUTE_TIME_MODIFIED "," \
                         G_FILE_ATTRIBUTE_TIME_MODIFIED_NSEC "," \
                         G_FILE_ATTRIBUTE_UNIX_INODE

#define SHA256_HEX_LENGTH 64
#define MODEL_HASH_LENGTH 10
#define LORA_HASH_LENGTH 12

/* What a cached hash was computed for. */
typedef struct {
  guint64 size;
  guint64 mtime_ns;
  guint64 inode;
} FileStamp;

static void
stamp_from_info (GFileInfo *info,
                 FileStamp *stamp)
{
  stamp->size = (guint64) g_file_info_get_size (info);
  stamp->mtime_ns =
    g_file_info_get_attribute_uint64 (info, G_FILE_ATTRIBUTE_TIME_MODIFIED) * G_GUINT64_CONSTANT (1000000000) +
    g_file_info_get_attribute_uint32 (info, G_FILE_ATTRIBUTE_TIME_MODIFIED_NSEC);
  stamp->inode = g_file_info_get_attribute_uint64 (info, G_FILE_ATTRIBUTE_UNIX_INODE);
}

static const char *
kind_key (GouacheFileHashKind kind)
{
  return kind == GOUACHE_FILE_HASH_ADDNET ? "addnet" : "sha256";
}

/* ---- hashing ---- */

/* Moves @in past a safetensors header: an 8-byte little-endian length N, then N bytes. */
static gboolean
skip_safetensors_header (GFileInputStream  *in,
                         guint64            file_size,
                         GCancellable      *cancellable,
                         GError           **error)
{
  guint8 length_bytes[8];
  guint64 header_size = 0;
  gsize n_read = 0;

  if (!g_input_stream_read_all (G_INPUT_STREAM (in), length_bytes, sizeof length_bytes,
                                &n_read, cancellable, error))
    return FALSE;
  if (n_read < sizeof length_bytes)
    {
      g_set_error_literal (error, GOUACHE_ERROR, GOUACHE_ERROR_FORMAT,
                           _("The file is too short to be a safetensors file"));
      return FALSE;
    }
  for (int i = 7; i >= 0; i--)
    header_size = header_size << 8 | length_bytes[i];
  if (header_size > file_size - sizeof length_bytes)
    {
      /* the number is formatted first: a G_GUINT64_FORMAT inside _() cuts the msgid */
      g_autofree char *size = g_strdup_printf ("%" G_GUINT64_FORMAT, header_size);
      g_set_error (error, GOUACHE_ERROR, GOUACHE_ERROR_FORMAT,
                   _("The safetensors header (%s bytes) runs past the end of the file"), size);
      return FALSE;
    }
  return g_seekable_seek (G_SEEKABLE (in), (goffset) (sizeof length_bytes + header_size),
                          G_SEEK_SET, cancellable, error);
}

/* The hex hash of @file, and in @stamp the size, time and inode of the file it read. */
static char *
hash_file (GFile                *file,
           GouacheFileHashKind   kind,
           FileStamp            *stamp,
           GCancellable         *cancellable,
           GError              **error)
{
  g_autoptr(GFileInputStream) in = NULL;
  g_autoptr(GFileInfo) info = NULL;
  g_autofree guint8 *block = NULL;
  unsigned char digest[32];
  char hex[SHA256_HEX_LENGTH + 1];
  gc_sha256 sha;

  in = g_file_read (file, cancellable, error);
  if (in == NULL)
    return NULL;
  info = g_file_input_stream_query_info (in, STAMP_ATTRIBUTES, cancellable, error);
  if (info == NULL)
    return NULL;
  stamp_from_info (info, stamp);

  if (kind == GOUACHE_FILE_HASH_ADDNET &&
      !skip_safetensors_header (in, stamp->size, cancellable, error))
    return NULL;

  block = g_malloc (GOUACHE_FILE_HASH_BLOCK_SIZE);
  gc_sha256_init (&sha);
  for (;;)
    {
      gsize n_read = 0;

      if (g_cancellable_set_error_if_cancelled (cancellable, error) ||
          !g_input_stream_read_all (G_INPUT_STREAM (in), block, GOUACHE_FILE_HASH_BLOCK_SIZE,
                                    &n_read, cancellable, error))
        return NULL;
      if (n_read == 0)
        break;
      gc_sha256_update (&sha, block, n_read);
    }
  gc_sha256_final (&sha, digest);
  gc_sha256_hex (digest, hex);
  return g_strdup (hex);
}

/**
 * gouache_file_hash_compute:
 * @path: a file, in the file-name encoding
 * @kind: what to hash
 * @cancellable: (nullable): checked between blocks
 * @error: return location for a #GError, or %NULL
 *
 * Hashes the file now, reading it in blocks of %GOUACHE_FILE_HASH_BLOCK_SIZE, without the
 * cache.
 *
 * Returns: (transfer full): 64 lower-case hex digits, or %NULL with @error set
 *   (%G_IO_ERROR, including %G_IO_ERROR_CANCELLED; %GOUACHE_ERROR_FORMAT for an addnet hash
 *   of a file that is not safetensors)
 */
char *
gouache_file_hash_compute (const char           *path,
                           GouacheFileHashKind   kind,
                           GCancellable         *cancellable,
                           GError              **error)
{
  g_autoptr(GFile) file = NULL;
  FileStamp stamp;

  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  file = g_file_new_for_path (path);
  return hash_file (file, kind, &stamp, cancellable, error);
}

/* ---- the cache ---- */

static char *
cache_dir (void)
{
  return g_build_filename (g_get_user_cache_dir (), "gouache", NULL);
}

static GKeyFile *
load_cache (const char *cache_path)
{
  GKeyFile *keys = g_key_file_new ();
  g_autoptr(GError) error = NULL;

  /* a missing or damaged cache is an empty one */
  if (!g_key_file_load_from_file (keys, cache_path, G_KEY_FILE_NONE, &error) &&
      !g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
    g_debug ("Ignoring the hash cache %s: %s", cache_path, error->message);
  return keys;
}

static gboolean
stamp_matches (GKeyFile        *keys,
               const char      *group,
               const FileStamp *stamp)
{
  return g_key_file_has_group (keys, group) &&
         g_key_file_get_uint64 (keys, group, "size", NULL) == stamp->size &&
         g_key_file_get_uint64 (keys, group, "mtime-ns", NULL) == stamp->mtime_ns &&
         g_key_file_get_uint64 (keys, group, "inode", NULL) == stamp->inode;
}

static gboolean
is_sha256_hex (const char *hex)
{
  if (hex == NULL || strlen (hex) != SHA256_HEX_LENGTH)
    return FALSE;
  for (const char *p = hex; *p != '\0'; p++)
    if (!g_ascii_isdigit (*p) && !(*p >= 'a' && *p <= 'f'))
      return FALSE;
  return TRUE;
}

static char *
cache_lookup (const char          *group,
              GouacheFileHashKind  kind,
              const FileStamp     *stamp)
{
  g_autofree char *dir = cache_dir ();
  g_autofree char *cache_path = g_build_filename (dir, "hashes.ini", NULL);
  g_autoptr(GKeyFile) keys = load_cache (cache_path);
  g_autofree char *hex = NULL;

  if (!stamp_matches (keys, group, stamp))
    return NULL;
  hex = g_key_file_get_string (keys, group, kind_key (kind), NULL);
  return is_sha256_hex (hex) ? g_steal_pointer (&hex) : NULL;
}

/* Records @hex for @group; a failure only costs a later rehash, so it is logged, not returned. */
static void
cache_store (const char          *group,
             GouacheFileHashKind  kind,
             const FileStamp     *stamp,
             const char          *hex)
{
  g_autofree char *dir = cache_dir ();
  g_autofree char *cache_path = g_build_filename (dir, "hashes.ini", NULL);
  g_autofree char *lock_path = g_build_filename (dir, "hashes.ini.lock", NULL);
  g_autoptr(GKeyFile) keys = NULL;
  g_autoptr(GError) error = NULL;
  int lock_fd;

  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      g_warning ("Could not create the cache folder %s: %s", dir, g_strerror (errno));
      return;
    }

  lock_fd = g_open (lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (lock_fd < 0)
    {
      g_warning ("Could not open %s: %s", lock_path, g_strerror (errno));
      return;
    }
  while (flock (lock_fd, LOCK_EX) != 0)
    {
      if (errno != EINTR)
        {
          g_warning ("Could not lock %s: %s", lock_path, g_strerror (errno));
          close (lock_fd);
          return;
        }
    }

  keys = load_cache (cache_path);
  if (!stamp_matches (keys, group, stamp))
    {
      /* the other kind of hash, if any, belongs to an older version of the file */
      g_key_file_remove_group (keys, group, NULL);
      g_key_file_set_uint64 (keys, group, "size", stamp->size);
      g_key_file_set_uint64 (keys, group, "mtime-ns", stamp->mtime_ns);
      g_key_file_set_uint64 (keys, group, "inode", stamp->inode);
    }
  g_key_file_set_string (keys, group, kind_key (kind), hex);
  if (!g_key_file_save_to_file (keys, cache_path, &error))
    g_warning ("Could not save the hash cache: %s", error->message);

  close (lock_fd);
}

/**
 * gouache_file_hash_get:
 * @path: a file, in the file-name encoding
 * @kind: what to hash
 * @cancellable: (nullable): checked between blocks
 * @error: return location for a #GError, or %NULL
 *
 * Like gouache_file_hash_compute(), but answers from the cache when the file's size,
 * modification time (to the nanosecond) and inode are the ones the cached hash was computed
 * for, and stores a newly computed hash there.
 *
 * Returns: (transfer full): 64 lower-case hex digits, or %NULL with @error set
 */
char *
gouache_file_hash_get (const char           *path,
                       GouacheFileHashKind   kind,
                       GCancellable         *cancellable,
                       GError              **error)
{
  g_autoptr(GFile) file = NULL;
  g_autoptr(GFileInfo) info = NULL;
  g_autofree char *group = NULL;
  g_autofree char *hex = NULL;
  FileStamp stamp;

  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  file = g_file_new_for_path (path);
  group = g_file_get_uri (file);
  info = g_file_query_info (file, STAMP_ATTRIBUTES, G_FILE_QUERY_INFO_NONE, cancellable, error);
  if (info == NULL)
    return NULL;
  stamp_from_info (info, &stamp);

  hex = cache_lookup (group, kind, &stamp);
  if (hex != NULL)
    return g_steal_pointer (&hex);

  hex = hash_file (file, kind, &stamp, cancellable, error);
  if (hex == NULL)
    return NULL;
  cache_store (group, kind, &stamp, hex);
  return g_steal_pointer (&hex);
}

/**
 * gouache_file_hash_model_hash:
 * @path: a checkpoint file
 * @cancellable: (nullable): checked between blocks
 * @error: return location for a #GError, or %NULL
 *
 * Returns: (transfer full): A1111's "Model hash": the first 10 hex digits of the file's
 *   SHA-256 (cached), or %NULL with @error set
 */
char *
gouache_file_hash_model_hash (const char    *path,
                              GCancellable  *cancellable,
                              GError       **error)
{
  g_autofree char *hex = gouache_file_hash_get (path, GOUACHE_FILE_HASH_SHA256, cancellable, error);

  return hex != NULL ? g_strndup (hex, MODEL_HASH_LENGTH) : NULL;
}

/**
 * gouache_file_hash_lora_hash:
 * @path: a LoRA file
 * @cancellable: (nullable): checked between blocks
 * @error: return location for a #GError, or %NULL
 *
 * Returns: (transfer full): A1111's LoRA short hash: the first 12 hex digits of the addnet hash
 *   for a ".safetensors" file (in any letter case), of the whole file's SHA-256 otherwise
 *   (cached), or %NULL with @error set
 */
char *
gouache_file_hash_lora_hash (const char    *path,
                             GCancellable  *cancellable,
                             GError       **error)
{
  g_autofree char *lower = g_ascii_strdown (path, -1);
  GouacheFileHashKind kind = g_str_has_suffix (lower, ".safetensors") ? GOUACHE_FILE_HASH_ADDNET
                                                                      : GOUACHE_FILE_HASH_SHA256;
  g_autofree char *hex = gouache_file_hash_get (path, kind, cancellable, error);

  return hex != NULL ? g_strndup (hex, LORA_HASH_LENGTH) : NULL;
}
