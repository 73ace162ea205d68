/*
 * A PKCS#11 module that stands in front of another (SoftHSM by default) and behaves like an HSM on
 * the network: it forwards every call, sleeping first in the calls that do cryptographic work, and
 * can fail or hang chosen calls, for the reliability tests: what a vendor's network HSM does.
 *
 *   KMS_SHIM_MODULE     the real module (default /usr/lib/softhsm/libsofthsm2.so)
 *   KMS_SHIM_DELAY_US   microseconds to sleep in each crypto call (default 0)
 *   KMS_SHIM_FAIL_AT    fail the Nth crypto call (1-based; default 0 = never)
 *   KMS_SHIM_FAIL_RV    the CKR it fails with (default 0x30, CKR_DEVICE_ERROR)
 *   KMS_SHIM_FAIL_FILE  while this file exists, calls fail as its lines say: each line is a CKR,
 *                       optionally "always", and the calls it applies to (none: the crypto calls),
 *                       e.g. "0x30", "0xb1 always C_OpenSession". The first line naming a call
 *                       fails it; a line without "always" is then removed (the file with its last
 *                       line). A line that says "after" makes the call first and then fails it, as
 *                       when the HSM did the work and its answer was lost on the way back. Lets a
 *                       test break the HSM exactly when it wants.
 *   KMS_SHIM_HANG_FILE  while this file exists, the calls it names (none: the crypto calls) block,
 *                       until the file is removed or no longer names them: a network HSM that stops
 *                       answering. Each call that starts hanging appends its name to the file's
 *                       name plus ".calls", so that a test can wait for it.
 *
 * Crypto calls: C_Encrypt, C_Decrypt, C_GenerateRandom, C_GenerateKey. The fail and hang files
 * also reach C_EncryptInit, C_DecryptInit, C_OpenSession, C_Initialize and C_DestroyObject (when a
 * line names them). Everything else passes
 * through untouched, from the real module's own function list.
 */
#define CK_PTR *
#define CK_DECLARE_FUNCTION(returnType, name) returnType name
#define CK_DECLARE_FUNCTION_POINTER(returnType, name) returnType(*name)
#define CK_CALLBACK_FUNCTION(returnType, name) returnType(*name)
#ifndef NULL_PTR
#define NULL_PTR 0
#endif
#include "pkcs11.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

static CK_FUNCTION_LIST_PTR real;
static CK_FUNCTION_LIST shim;
static long delay_us;
static long fail_at;
static const char *fail_file;
static const char *hang_file;
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t calls_lock = PTHREAD_MUTEX_INITIALIZER;
static CK_RV fail_rv = 0x30;
static atomic_long crypto_calls;
static pthread_once_t loaded = PTHREAD_ONCE_INIT;

static long env_long(const char *name, long fallback) {
  const char *value = getenv(name);
  return value && *value ? strtol(value, NULL, 0) : fallback;
}

static const char CRYPTO_CALLS[] = "C_Encrypt C_Decrypt C_GenerateRandom C_GenerateKey";

/* Whether the words of `list` name `call`; a list naming no call (no "C_" word) means the crypto calls. */
static int names_call(const char *list, const char *call) {
  int any = 0;
  size_t n = strlen(call);
  for (const char *p = list; *p;) {
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
    const char *word = p;
    while (*p && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') p++;
    size_t length = (size_t)(p - word);
    if (length > 2 && word[0] == 'C' && word[1] == '_') {
      any = 1;
      if (length == n && strncmp(word, call, n) == 0) return 1;
    }
  }
  return any ? 0 : names_call(CRYPTO_CALLS, call);
}

static size_t read_file(const char *path, char *text, size_t size) {
  FILE *file = fopen(path, "r");
  if (!file) return (size_t)-1;
  size_t length = fread(text, 1, size - 1, file);
  fclose(file);
  text[length] = 0;
  return length;
}

/* Whether the words of `line` include `word` exactly. */
static int has_word(const char *line, const char *word) {
  size_t n = strlen(word);
  for (const char *at = strstr(line, word); at; at = strstr(at + 1, word)) {
    int starts = at == line || at[-1] == ' ' || at[-1] == '\t';
    int ends = at[n] == 0 || at[n] == ' ' || at[n] == '\t' || at[n] == '\r' || at[n] == '\n';
    if (starts && ends) return 1;
  }
  return 0;
}

/* The failure KMS_SHIM_FAIL_FILE asks of `call`, or CKR_OK; `*after` when the call is to be made first. */
static CK_RV injected_failure(const char *call, int *after) {
  if (!fail_file) return CKR_OK;
  CK_RV rv = CKR_OK;
  char text[4096], kept[4096];
  size_t length = 0;
  int fired = 0, dropped = 0;
  pthread_mutex_lock(&fail_lock);
  if (read_file(fail_file, text, sizeof text) != (size_t)-1) {
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
      if (!fired && names_call(line, call)) {
        fired = 1;
        rv = (CK_RV)strtoul(line, NULL, 0);
        *after = has_word(line, "after");
        if (!strstr(line, "always")) {
          dropped = 1;
          continue;
        }
      }
      length += (size_t)snprintf(kept + length, sizeof kept - length, "%s\n", line);
    }
    if (dropped && length == 0) unlink(fail_file);
    else if (dropped) {
      FILE *file = fopen(fail_file, "w");
      if (file) {
        fwrite(kept, 1, length, file);
        fclose(file);
      }
    }
  }
  pthread_mutex_unlock(&fail_lock);
  return rv;
}

/* Blocks while KMS_SHIM_HANG_FILE names `call`. */
static void hang_if_asked(const char *call) {
  if (!hang_file) return;
  char text[1024];
  if (read_file(hang_file, text, sizeof text) == (size_t)-1 || !names_call(text, call)) return;
  char calls[4096];
  snprintf(calls, sizeof calls, "%s.calls", hang_file);
  pthread_mutex_lock(&calls_lock);
  FILE *log = fopen(calls, "a");
  if (log) {
    fprintf(log, "%s\n", call);
    fclose(log);
  }
  pthread_mutex_unlock(&calls_lock);
  struct timespec pause = {0, 10 * 1000 * 1000};
  while (read_file(hang_file, text, sizeof text) != (size_t)-1 && names_call(text, call)) nanosleep(&pause, NULL);
}

/* What every intercepted call does first: hang or fail when asked to. */
static CK_RV intercept(const char *call, int *after) {
  *after = 0;
  hang_if_asked(call);
  return injected_failure(call, after);
}

/* The network round trip, and the chosen failure. */
static CK_RV crypto_call(const char *call, int *after) {
  *after = 0;
  long n = atomic_fetch_add(&crypto_calls, 1) + 1;
  if (delay_us > 0) {
    struct timespec pause = {delay_us / 1000000, (delay_us % 1000000) * 1000};
    while (nanosleep(&pause, &pause) != 0) {
    }
  }
  if (fail_at > 0 && n == fail_at) return fail_rv;
  return intercept(call, after);
}

/* Makes the real call unless a failure comes first; a failure chosen "after" replaces its result. */
#define FORWARD(check, name, call)   \
  do {                               \
    int after = 0;                   \
    CK_RV rv = check(name, &after);  \
    if (rv == CKR_OK) return call;   \
    if (after) (void)(call);         \
    return rv;                       \
  } while (0)

static CK_RV shim_C_Encrypt(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
  FORWARD(crypto_call, "C_Encrypt", real->C_Encrypt(s, in, in_len, out, out_len));
}

static CK_RV shim_C_Decrypt(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
  FORWARD(crypto_call, "C_Decrypt", real->C_Decrypt(s, in, in_len, out, out_len));
}

static CK_RV shim_C_GenerateRandom(CK_SESSION_HANDLE s, CK_BYTE_PTR out, CK_ULONG len) {
  FORWARD(crypto_call, "C_GenerateRandom", real->C_GenerateRandom(s, out, len));
}

static CK_RV shim_C_GenerateKey(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_HANDLE_PTR key) {
  FORWARD(crypto_call, "C_GenerateKey", real->C_GenerateKey(s, m, t, n, key));
}

static CK_RV shim_C_EncryptInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE key) {
  FORWARD(intercept, "C_EncryptInit", real->C_EncryptInit(s, m, key));
}

static CK_RV shim_C_DecryptInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE key) {
  FORWARD(intercept, "C_DecryptInit", real->C_DecryptInit(s, m, key));
}

static CK_RV shim_C_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify, CK_SESSION_HANDLE_PTR session) {
  FORWARD(intercept, "C_OpenSession", real->C_OpenSession(slot, flags, app, notify, session));
}

static CK_RV shim_C_Initialize(CK_VOID_PTR args) {
  FORWARD(intercept, "C_Initialize", real->C_Initialize(args));
}

static CK_RV shim_C_DestroyObject(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE object) {
  FORWARD(intercept, "C_DestroyObject", real->C_DestroyObject(s, object));
}

static void load(void) {
  const char *path = getenv("KMS_SHIM_MODULE");
  void *module = dlopen(path && *path ? path : "/usr/lib/softhsm/libsofthsm2.so", RTLD_NOW | RTLD_LOCAL);
  if (!module) return;
  CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(module, "C_GetFunctionList");
  if (!get || get(&real) != CKR_OK) {
    real = NULL;
    return;
  }
  delay_us = env_long("KMS_SHIM_DELAY_US", 0);
  fail_at = env_long("KMS_SHIM_FAIL_AT", 0);
  fail_rv = (CK_RV)env_long("KMS_SHIM_FAIL_RV", 0x30);
  fail_file = getenv("KMS_SHIM_FAIL_FILE");
  if (fail_file && !*fail_file) fail_file = NULL;
  hang_file = getenv("KMS_SHIM_HANG_FILE");
  if (hang_file && !*hang_file) hang_file = NULL;
  shim = *real;
  shim.C_Encrypt = shim_C_Encrypt;
  shim.C_Decrypt = shim_C_Decrypt;
  shim.C_GenerateRandom = shim_C_GenerateRandom;
  shim.C_GenerateKey = shim_C_GenerateKey;
  shim.C_EncryptInit = shim_C_EncryptInit;
  shim.C_DecryptInit = shim_C_DecryptInit;
  shim.C_OpenSession = shim_C_OpenSession;
  shim.C_Initialize = shim_C_Initialize;
  shim.C_DestroyObject = shim_C_DestroyObject;
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list) {
  pthread_once(&loaded, load);
  if (!real || !list) return CKR_GENERAL_ERROR;
  *list = &shim;
  return CKR_OK;
}
