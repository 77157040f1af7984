#include "config.h"

#include "gouache-cli.h"

#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "gc-threads.h"

volatile int gouache_cli_interrupted;

int
gouache_cli_fail (const char *format, ...)
{
  va_list args;
  va_start (args, format);
  g_autofree char *message = g_strdup_vprintf (format, args);
  va_end (args);
  fprintf (stderr, "gouache-cli: %s\n", message);
  return 1;
}

int
gouache_cli_fail_core (const gc_error *err)
{
  return gouache_cli_fail ("%s", err->message[0] ? err->message : gc_status_name (err->code));
}

gboolean
gouache_cli_parse (int *argc, char ***argv, const char *usage, const char *summary,
                   const GOptionEntry *entries)
{
  g_autoptr (GOptionContext) context = g_option_context_new (usage);
  g_autoptr (GError) error = NULL;
  g_option_context_set_summary (context, summary);
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, argc, argv, &error))
    {
      gouache_cli_fail ("%s (see --help)", error->message);
      return FALSE;
    }
  return TRUE;
}

char *
gouache_cli_data_file (const char *name)
{
  const char *override = g_getenv ("GOUACHE_DATA_DIR");
  if (override && *override)
    return g_build_filename (override, name, NULL);
  g_autofree char *installed = g_build_filename (GOUACHE_PKGDATADIR, name, NULL);
  if (g_file_test (installed, G_FILE_TEST_EXISTS))
    return g_steal_pointer (&installed);
  /* running from the build tree, before `meson install` */
  return g_build_filename (GOUACHE_SOURCE_DATA_DIR, name, NULL);
}

void
gouache_cli_set_threads (int threads)
{
  gc_threads_set (threads);
}

static void
on_interrupt (int signal_number)
{
  /* a second Ctrl-C while the first is being honoured quits at once */
  if (gouache_cli_interrupted)
    _exit (130);
  gouache_cli_interrupted = 1;
}

void
gouache_cli_catch_interrupt (void)
{
  struct sigaction action = { 0 };
  action.sa_handler = on_interrupt;
  sigemptyset (&action.sa_mask);
  sigaction (SIGINT, &action, NULL);
}

void
gouache_cli_progress_start (GouacheCliProgress *progress, const char *label)
{
  progress->started = g_get_monotonic_time ();
  progress->last_draw = 0;
  progress->label = label;
}

static void
format_duration (char *out, size_t size, double seconds)
{
  if (seconds < 60)
    g_snprintf (out, size, "%.0f s", seconds);
  else
    g_snprintf (out, size, "%d min %02d s", (int) seconds / 60, (int) seconds % 60);
}

void
gouache_cli_progress_update (GouacheCliProgress *progress, int done, int total)
{
  enum { WIDTH = 24 };
  gint64 now = g_get_monotonic_time ();
  double elapsed = (now - progress->started) / 1e6;
  char bar[WIDTH * 3 + 1];
  int filled = total > 0 ? done * WIDTH / total : 0;
  size_t used = 0;
  for (int i = 0; i < WIDTH; i++)
    used += (size_t) g_snprintf (bar + used, sizeof bar - used, "%s", i < filled ? "#" : "-");
  char eta[32] = "";
  if (done > 0 && done < total)
    format_duration (eta, sizeof eta, elapsed / done * (total - done));
  fprintf (stderr, "\r%s [%s] %d/%d  %.2f s/it%s%s   ", progress->label, bar, done, total,
           done > 0 ? elapsed / done : 0.0, eta[0] ? "  ETA " : "", eta);
  fflush (stderr);
  progress->last_draw = now;
}

void
gouache_cli_progress_finish (GouacheCliProgress *progress)
{
  char took[32];
  format_duration (took, sizeof took, (g_get_monotonic_time () - progress->started) / 1e6);
  fprintf (stderr, "  done in %s\n", took);
}
