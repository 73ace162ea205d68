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
 *
 * Crypto calls: C_Encrypt, C_Decrypt, C_GenerateRandom, C_GenerateKey. Everything else passes
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
static CK_RV fail_rv = 0x30;
static atomic_long crypto_calls;
static pthread_once_t loaded = PTHREAD_ONCE_INIT;

static long env_long(const char *name, long fallback) {
  const char *value = getenv(name);
  return value && *value ? strtol(value, NULL, 0) : fallback;
}

/* The network round trip, and the chosen failure. */
static CK_RV crypto_call(void) {
  long n = atomic_fetch_add(&crypto_calls, 1) + 1;
  if (delay_us > 0) {
    struct timespec pause = {delay_us / 1000000, (delay_us % 1000000) * 1000};
    while (nanosleep(&pause, &pause) != 0) {
    }
  }
  if (fail_at > 0 && n == fail_at) return fail_rv;
  if (fail_file) {
    FILE *file = fopen(fail_file, "r");
    if (file) {
      char text[64] = {0};
      size_t length = fread(text, 1, sizeof text - 1, file);
      fclose(file);
      text[length] = 0;
      if (!strstr(text, "always")) unlink(fail_file);
      return (CK_RV)strtoul(text, NULL, 0);
    }
  }
  return CKR_OK;
}

static CK_RV shim_C_Encrypt(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
  CK_RV rv = crypto_call();
  return rv != CKR_OK ? rv : real->C_Encrypt(s, in, in_len, out, out_len);
}

static CK_RV shim_C_Decrypt(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
  CK_RV rv = crypto_call();
  return rv != CKR_OK ? rv : real->C_Decrypt(s, in, in_len, out, out_len);
}

static CK_RV shim_C_GenerateRandom(CK_SESSION_HANDLE s, CK_BYTE_PTR out, CK_ULONG len) {
  CK_RV rv = crypto_call();
  return rv != CKR_OK ? rv : real->C_GenerateRandom(s, out, len);
}

static CK_RV shim_C_GenerateKey(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_HANDLE_PTR key) {
  CK_RV rv = crypto_call();
  return rv != CKR_OK ? rv : real->C_GenerateKey(s, m, t, n, key);
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
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list) {
  pthread_once(&loaded, load);
  if (!real || !list) return CKR_GENERAL_ERROR;
  *list = &shim;
  return CKR_OK;
}
