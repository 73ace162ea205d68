/*
 * A PKCS#11 module that stands in front of another (SoftHSM by default) and behaves like an HSM on
 * the network: it forwards every call, sleeping first in the calls that do cryptographic work, and
 * can fail one chosen call with a chosen CKR, for the reliability tests.
 *
 *   KMS_SHIM_MODULE     the real module (default /usr/lib/softhsm/libsofthsm2.so)
 *   KMS_SHIM_DELAY_US   microseconds to sleep in each crypto call (default 0)
 *   KMS_SHIM_FAIL_AT    fail the Nth crypto call (1-based; default 0 = never)
 *   KMS_SHIM_FAIL_RV    the CKR it fails with (default 0x30, CKR_DEVICE_ERROR)
 *   KMS_SHIM_FAIL_FILE  while this file exists, crypto calls fail with the CKR written in it
 *                       (e.g. "0x30"); the first failing call deletes the file, unless the file
 *                       also says "always". Lets a test break the HSM exactly when it wants.
 *                       More words in the file: call names (e.g. "C_DestroyObject C_Decrypt")
 *                       fail only those calls, the others pass without using the file up;
 *                       "after" makes the call first and then fails it, as when the HSM did the
 *                       work and its answer was lost on the way back.
 *
 * Crypto calls: C_Encrypt, C_Decrypt, C_GenerateRandom, C_GenerateKey (delayed, counted for
 * KMS_SHIM_FAIL_AT). C_DestroyObject can fail through the file when the file names it. Everything
 * else passes through untouched, from the real module's own function list.
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
#include <ctype.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

static CK_FUNCTION_LIST_PTR real;
static CK_FUNCTION_LIST shim;
static long delay_us;
static long fail_at;
static const char *fail_file;
static CK_RV fail_rv = 0x30;
static atomic_long crypto_calls;
static pthread_once_t loaded = PTHREAD_ONCE_INIT;

static long env_long(const char *name, long fallback) {
  const char *value = getenv(name);
  return value && *value ? strtol(value, NULL, 0) : fallback;
}

/* Whether `text` holds the word `word` (so that "C_Decrypt" is not found in "C_DecryptInit"). */
static int has_word(const char *text, const char *word) {
  size_t length = strlen(word);
  for (const char *at = strstr(text, word); at; at = strstr(at + 1, word)) {
    int starts = at == text || isspace((unsigned char)at[-1]);
    int ends = at[length] == 0 || isspace((unsigned char)at[length]);
    if (starts && ends) return 1;
  }
  return 0;
}

/*
 * The failure the fail file chooses for the call `name`, or CKR_OK: a file that names no call
 * fails any crypto call, unless `only_when_named`. `*after` is set when the call is to be made
 * before failing. One thread at a time reads and consumes the file.
 */
static CK_RV file_failure(const char *name, int only_when_named, int *after) {
  static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
  if (!fail_file) return CKR_OK;
  pthread_mutex_lock(&lock);
  CK_RV rv = CKR_OK;
  FILE *file = fopen(fail_file, "r");
  if (file) {
    char text[256] = {0};
    size_t length = fread(text, 1, sizeof text - 1, file);
    fclose(file);
    text[length] = 0;
    int names_calls = strstr(text, "C_") != NULL;
    if (names_calls ? has_word(text, name) : !only_when_named) {
      if (!strstr(text, "always")) unlink(fail_file);
      *after = has_word(text, "after");
      rv = (CK_RV)strtoul(text, NULL, 0);
    }
  }
  pthread_mutex_unlock(&lock);
  return rv;
}

/* The network round trip, and the chosen failure. */
static CK_RV crypto_call(const char *name, int *after) {
  long n = atomic_fetch_add(&crypto_calls, 1) + 1;
  if (delay_us > 0) {
    struct timespec pause = {delay_us / 1000000, (delay_us % 1000000) * 1000};
    while (nanosleep(&pause, &pause) != 0) {
    }
  }
  *after = 0;
  if (fail_at > 0 && n == fail_at) return fail_rv;
  return file_failure(name, 0, after);
}

/* Makes the real call unless a failure comes first; a failure chosen "after" replaces its result. */
#define FORWARD(name, call)                  \
  do {                                       \
    int after = 0;                           \
    CK_RV rv = crypto_call(name, &after);    \
    if (rv == CKR_OK) return call;           \
    if (after) (void)(call);                 \
    return rv;                               \
  } while (0)

static CK_RV shim_C_Encrypt(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
  FORWARD("C_Encrypt", real->C_Encrypt(s, in, in_len, out, out_len));
}

static CK_RV shim_C_Decrypt(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
  FORWARD("C_Decrypt", real->C_Decrypt(s, in, in_len, out, out_len));
}

static CK_RV shim_C_GenerateRandom(CK_SESSION_HANDLE s, CK_BYTE_PTR out, CK_ULONG len) {
  FORWARD("C_GenerateRandom", real->C_GenerateRandom(s, out, len));
}

static CK_RV shim_C_GenerateKey(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_HANDLE_PTR key) {
  FORWARD("C_GenerateKey", real->C_GenerateKey(s, m, t, n, key));
}

/* Not a crypto call (no delay, not counted): fails only when the fail file names it. */
static CK_RV shim_C_DestroyObject(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE object) {
  int after = 0;
  CK_RV rv = file_failure("C_DestroyObject", 1, &after);
  if (rv == CKR_OK) return real->C_DestroyObject(s, object);
  if (after) (void)real->C_DestroyObject(s, object);
  return rv;
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
  shim = *real;
  shim.C_Encrypt = shim_C_Encrypt;
  shim.C_Decrypt = shim_C_Decrypt;
  shim.C_GenerateRandom = shim_C_GenerateRandom;
  shim.C_GenerateKey = shim_C_GenerateKey;
  shim.C_DestroyObject = shim_C_DestroyObject;
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list) {
  pthread_once(&loaded, load);
  if (!real || !list) return CKR_GENERAL_ERROR;
  *list = &shim;
  return CKR_OK;
}
