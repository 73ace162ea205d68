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
 * also reach C_EncryptInit, C_DecryptInit, C_OpenSession, C_Login, C_Initialize and C_DestroyObject
 * (when a line names them).
 *
 * It can also behave as FIPS-mode and other vendors' HSMs do where SoftHSM does not (a value that
 * is unset or empty takes the build's default: the one below for libkms-delay-shim.so, build.sh's
 * -D macros for libkms-fips-shim.so):
 *
 *   KMS_SHIM_GCM_IV        who makes the AES-GCM IV of C_EncryptInit (CKM_AES_GCM):
 *                          "caller" (default): the caller, as with SoftHSM;
 *                          "token-params": the token, as AWS CloudHSM and FIPS-mode HSMs do. A
 *                          caller IV (a pIv buffer that is not all zero bytes) is refused with
 *                          CKR_MECHANISM_PARAM_INVALID, as is an ulIvLen other than 12; otherwise
 *                          the shim draws 12 bytes from the real module's C_GenerateRandom, starts
 *                          the operation with them and writes them into the caller's pIv buffer
 *                          (pkcs11js hands the JS Buffer's own memory, so the caller sees them).
 *                          The buffer must be zeroed again before the next C_EncryptInit;
 *                          "token-output": the same refusal, but the IV is not written back:
 *                          C_Encrypt returns IV || ciphertext || tag (as CloudHSM's vendor
 *                          mechanism CKM_CLOUDHSM_AES_GCM does), 12 bytes more than the real
 *                          module (a NULL pIv is accepted too), with the usual length query
 *                          (NULL output, or CKR_BUFFER_TOO_SMALL with the length needed). Single-
 *                          part C_Encrypt only. The IV waits in a table by session handle between
 *                          C_EncryptInit and C_Encrypt.
 *                          Decryption is the same in every mode: the caller passes the IV it got.
 *   KMS_SHIM_GCM_PARAMS    which CK_GCM_PARAMS layout C_EncryptInit and C_DecryptInit accept, told
 *                          apart by ulParameterLen: "v240" is {pIv, ulIvLen, ulIvBits, pAAD,
 *                          ulAADLen, ulTagBits} (48 bytes on this ABI: the v2.40 errata header's,
 *                          and the only one SoftHSM 2.6 reads, refusing any other length with
 *                          CKR_ARGUMENTS_BAD), "v3" is {pIv, ulIvLen, pAAD, ulAADLen, ulTagBits}
 *                          (40 bytes: the v2.40 prose's, NSS's and older vendor headers'). The
 *                          names are the project's; OASIS v3.0 itself keeps ulIvBits.
 *                          "any" (default): both pass through untouched;
 *                          "v240": the 40-byte layout is refused with CKR_MECHANISM_PARAM_INVALID;
 *                          "v3": the 48-byte layout is refused so, and the 40-byte one is handed to
 *                          SoftHSM translated (ulIvBits = 8 * ulIvLen).
 *                          pkcs11js 2.1.7 sends the 48-byte layout for both CK_PARAMS_AES_GCM_v240
 *                          and CK_PARAMS_AES_GCM (the latter with ulIvBits left unset), so "v3"
 *                          refuses both: only a caller in C makes the 40-byte one.
 *   KMS_SHIM_MAX_SESSIONS  sessions open at once per slot (default 0 = no limit): one more
 *                          C_OpenSession answers CKR_SESSION_COUNT; C_CloseSession,
 *                          C_CloseAllSessions and C_Finalize free the count, and C_GetTokenInfo
 *                          reports ulMaxSessionCount = N and the shim's ulSessionCount and
 *                          ulRwSessionCount.
 *   KMS_SHIM_MANUFACTURER  replaces manufacturerID and libraryDescription in C_GetInfo (space-
 *                          padded to 32 bytes), so that the module is not taken for SoftHSM
 *                          (default: the real module's C_GetInfo).
 *   KMS_SHIM_BAD_TAG_RV    the CKR that C_Decrypt answers instead of the real module's
 *                          CKR_GENERAL_ERROR (SoftHSM's answer to a GCM tag that does not verify),
 *                          e.g. 0x40 CKR_ENCRYPTED_DATA_INVALID as the standard says (default 0:
 *                          passed through). An injected failure is never remapped.
 *
 * Everything else passes through untouched, from the real module's own function list.
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

/* The vendor behaviours' defaults; build.sh gives libkms-fips-shim.so others. */
#ifndef KMS_SHIM_DEFAULT_GCM_IV
#define KMS_SHIM_DEFAULT_GCM_IV "caller"
#endif
#ifndef KMS_SHIM_DEFAULT_GCM_PARAMS
#define KMS_SHIM_DEFAULT_GCM_PARAMS "any"
#endif
#ifndef KMS_SHIM_DEFAULT_MAX_SESSIONS
#define KMS_SHIM_DEFAULT_MAX_SESSIONS 0
#endif
#ifndef KMS_SHIM_DEFAULT_MANUFACTURER
#define KMS_SHIM_DEFAULT_MANUFACTURER ""
#endif
#ifndef KMS_SHIM_DEFAULT_BAD_TAG_RV
#define KMS_SHIM_DEFAULT_BAD_TAG_RV 0
#endif

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

static const char *env_text(const char *name, const char *fallback) {
  const char *value = getenv(name);
  return value && *value ? value : fallback;
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

/* ---- Vendor behaviours (KMS_SHIM_GCM_IV, _GCM_PARAMS, _MAX_SESSIONS, _MANUFACTURER, _BAD_TAG_RV) ---- */

enum gcm_iv_mode { IV_CALLER, IV_TOKEN_PARAMS, IV_TOKEN_OUTPUT };
enum gcm_layout_mode { LAYOUT_ANY, LAYOUT_V240, LAYOUT_V3 };
#define GCM_IV_BYTES 12

static enum gcm_iv_mode gcm_iv;
static enum gcm_layout_mode gcm_layout;
static long max_sessions;
static CK_RV bad_tag_rv;
static int has_manufacturer;
static CK_UTF8CHAR manufacturer[32];

/* The two CK_GCM_PARAMS layouts in circulation, spelled out: the headers define only one of them. */
typedef struct {
  CK_BYTE_PTR pIv;
  CK_ULONG ulIvLen;
  CK_ULONG ulIvBits;
  CK_BYTE_PTR pAAD;
  CK_ULONG ulAADLen;
  CK_ULONG ulTagBits;
} gcm_params_v240;

typedef struct {
  CK_BYTE_PTR pIv;
  CK_ULONG ulIvLen;
  CK_BYTE_PTR pAAD;
  CK_ULONG ulAADLen;
  CK_ULONG ulTagBits;
} gcm_params_v3;

/* GCM parameters read from either layout. */
struct gcm {
  CK_BYTE_PTR iv;
  CK_ULONG iv_len;
  CK_ULONG iv_bits;
  CK_BYTE_PTR aad;
  CK_ULONG aad_len;
  CK_ULONG tag_bits;
  int v3;
};

/* Whether `m` is CKM_AES_GCM with parameters in one of the two layouts, read into `g`. */
static int read_gcm(const CK_MECHANISM *m, struct gcm *g) {
  if (!m || m->mechanism != CKM_AES_GCM || !m->pParameter) return 0;
  if (m->ulParameterLen == sizeof(gcm_params_v240)) {
    const gcm_params_v240 *p = m->pParameter;
    *g = (struct gcm){p->pIv, p->ulIvLen, p->ulIvBits, p->pAAD, p->ulAADLen, p->ulTagBits, 0};
    return 1;
  }
  if (m->ulParameterLen == sizeof(gcm_params_v3)) {
    const gcm_params_v3 *p = m->pParameter;
    *g = (struct gcm){p->pIv, p->ulIvLen, 0, p->pAAD, p->ulAADLen, p->ulTagBits, 1};
    return 1;
  }
  return 0;
}

/* The refusal of a layout that KMS_SHIM_GCM_PARAMS does not accept, or CKR_OK. */
static CK_RV check_layout(const struct gcm *g) {
  if ((gcm_layout == LAYOUT_V240 && g->v3) || (gcm_layout == LAYOUT_V3 && !g->v3)) return CKR_MECHANISM_PARAM_INVALID;
  return CKR_OK;
}

typedef CK_RV (*init_call)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE);

/* Starts the real operation with `g`: in the 48-byte layout SoftHSM reads, unless "any" lets a 40-byte one through as is. */
static CK_RV init_gcm(init_call init, CK_SESSION_HANDLE s, const struct gcm *g, CK_OBJECT_HANDLE key) {
  gcm_params_v240 v240 = {g->iv, g->iv_len, g->v3 ? 8 * g->iv_len : g->iv_bits, g->aad, g->aad_len, g->tag_bits};
  gcm_params_v3 v3 = {g->iv, g->iv_len, g->aad, g->aad_len, g->tag_bits};
  CK_MECHANISM m = {CKM_AES_GCM, &v240, sizeof v240};
  if (g->v3 && gcm_layout == LAYOUT_ANY) {
    m.pParameter = &v3;
    m.ulParameterLen = sizeof v3;
  }
  return init(s, &m, key);
}

/*
 * Sessions the shim keeps track of (when a session limit is set or IVs wait for C_Encrypt): a small
 * table by handle, under a lock, since calls come from several threads. Opening and closing hold the
 * lock around the real call, so that a handle the real module hands out again is never confused with
 * the session it belonged to.
 */
struct session_entry {
  CK_SESSION_HANDLE handle;
  CK_SLOT_ID slot;
  int rw;
  int has_iv;
  CK_BYTE iv[GCM_IV_BYTES];
};
static struct session_entry *sessions;
static size_t session_count, session_room;
static pthread_mutex_t sessions_lock = PTHREAD_MUTEX_INITIALIZER;

static int tracking(void) { return max_sessions > 0 || gcm_iv == IV_TOKEN_OUTPUT; }

/* The entry of `s` (lock held), or NULL. */
static struct session_entry *session_entry(CK_SESSION_HANDLE s) {
  for (size_t i = 0; i < session_count; i++)
    if (sessions[i].handle == s) return &sessions[i];
  return NULL;
}

/* A fresh entry for `s` (lock held), or NULL when memory runs out. */
static struct session_entry *new_session_entry(CK_SESSION_HANDLE s, CK_SLOT_ID slot, int rw) {
  struct session_entry *entry = session_entry(s);
  if (!entry) {
    if (session_count == session_room) {
      size_t room = session_room ? 2 * session_room : 16;
      struct session_entry *grown = realloc(sessions, room * sizeof *grown);
      if (!grown) return NULL;
      sessions = grown;
      session_room = room;
    }
    entry = &sessions[session_count++];
  }
  *entry = (struct session_entry){.handle = s, .slot = slot, .rw = rw};
  return entry;
}

/* Forgets the sessions for which `gone` says so (lock held). */
static void forget_sessions(int (*gone)(const struct session_entry *, CK_ULONG), CK_ULONG which) {
  for (size_t i = 0; i < session_count;) {
    if (gone(&sessions[i], which)) sessions[i] = sessions[--session_count];
    else i++;
  }
}

static int is_handle(const struct session_entry *entry, CK_ULONG s) { return entry->handle == s; }
static int is_on_slot(const struct session_entry *entry, CK_ULONG slot) { return entry->slot == slot; }
static int is_any(const struct session_entry *entry, CK_ULONG unused) { (void)entry, (void)unused; return 1; }

static CK_ULONG sessions_on(CK_SLOT_ID slot, int rw_only) {
  CK_ULONG n = 0;
  for (size_t i = 0; i < session_count; i++)
    if (sessions[i].slot == slot && (!rw_only || sessions[i].rw)) n++;
  return n;
}

/* Copies out the IV waiting for C_Encrypt on `s`; whether there was one. */
static int waiting_iv(CK_SESSION_HANDLE s, CK_BYTE iv[GCM_IV_BYTES]) {
  pthread_mutex_lock(&sessions_lock);
  struct session_entry *entry = session_entry(s);
  int found = entry && entry->has_iv;
  if (found) memcpy(iv, entry->iv, GCM_IV_BYTES);
  pthread_mutex_unlock(&sessions_lock);
  return found;
}

/* Makes sure `s` has an entry to keep an IV in; CKR_HOST_MEMORY when there is no room. */
static CK_RV iv_room(CK_SESSION_HANDLE s) {
  pthread_mutex_lock(&sessions_lock);
  /* No entry: a session the shim did not see open (it tracks them from the start, so only a stray handle). */
  int found = session_entry(s) || new_session_entry(s, (CK_SLOT_ID)-1, 0);
  pthread_mutex_unlock(&sessions_lock);
  return found ? CKR_OK : CKR_HOST_MEMORY;
}

/* Sets (or with NULL, drops) the IV waiting for C_Encrypt on `s`. */
static void set_waiting_iv(CK_SESSION_HANDLE s, const CK_BYTE *iv) {
  pthread_mutex_lock(&sessions_lock);
  struct session_entry *entry = session_entry(s);
  if (entry) {
    entry->has_iv = iv != NULL;
    if (iv) memcpy(entry->iv, iv, GCM_IV_BYTES);
  }
  pthread_mutex_unlock(&sessions_lock);
}

static int all_zero(const CK_BYTE *bytes, CK_ULONG n) {
  for (CK_ULONG i = 0; i < n; i++)
    if (bytes[i]) return 0;
  return 1;
}

/* C_EncryptInit as the vendor would: the layout check, and the IV made by the token. */
static CK_RV encrypt_init(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE key) {
  struct gcm g;
  if (!read_gcm(m, &g)) {
    CK_RV rv = real->C_EncryptInit(s, m, key);
    if (rv == CKR_OK && gcm_iv == IV_TOKEN_OUTPUT) set_waiting_iv(s, NULL);
    return rv;
  }
  CK_RV rv = check_layout(&g);
  if (rv != CKR_OK) return rv;
  if (gcm_iv == IV_CALLER) return g.v3 && gcm_layout == LAYOUT_V3 ? init_gcm(real->C_EncryptInit, s, &g, key) : real->C_EncryptInit(s, m, key);
  /* The IV is the token's: a caller's own (any non-zero byte) is refused, as FIPS-mode HSMs do. */
  if (g.iv_len != GCM_IV_BYTES) return CKR_MECHANISM_PARAM_INVALID;
  if (g.iv ? !all_zero(g.iv, g.iv_len) : gcm_iv == IV_TOKEN_PARAMS) return CKR_MECHANISM_PARAM_INVALID;
  CK_BYTE iv[GCM_IV_BYTES];
  rv = real->C_GenerateRandom(s, iv, sizeof iv);
  if (rv != CKR_OK) return rv;
  /* Room first: once the real operation has started there is no undoing it. */
  if (gcm_iv == IV_TOKEN_OUTPUT && (rv = iv_room(s)) != CKR_OK) return rv;
  struct gcm made = g;
  made.iv = iv;
  rv = init_gcm(real->C_EncryptInit, s, &made, key);
  /* CKR_OPERATION_ACTIVE leaves the running operation, and the IV waiting for it, as they were. */
  if (gcm_iv == IV_TOKEN_OUTPUT && rv != CKR_OPERATION_ACTIVE) set_waiting_iv(s, rv == CKR_OK ? iv : NULL);
  if (gcm_iv == IV_TOKEN_PARAMS && rv == CKR_OK) memcpy(g.iv, iv, sizeof iv);
  return rv;
}

/* C_Encrypt under "token-output": IV || ciphertext || tag, with PKCS#11's length query. */
static CK_RV encrypt(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
  CK_BYTE iv[GCM_IV_BYTES];
  if (gcm_iv != IV_TOKEN_OUTPUT || !waiting_iv(s, iv)) return real->C_Encrypt(s, in, in_len, out, out_len);
  if (!out_len) return CKR_ARGUMENTS_BAD;
  CK_ULONG inner = 0;
  CK_RV rv;
  if (!out || *out_len < GCM_IV_BYTES) {
    /* A length query leaves the operation running; an error ends it. */
    rv = real->C_Encrypt(s, in, in_len, NULL, &inner);
    if (rv != CKR_OK) {
      set_waiting_iv(s, NULL);
      return rv;
    }
    *out_len = inner + GCM_IV_BYTES;
    return out ? CKR_BUFFER_TOO_SMALL : CKR_OK;
  }
  inner = *out_len - GCM_IV_BYTES;
  rv = real->C_Encrypt(s, in, in_len, out + GCM_IV_BYTES, &inner);
  if (rv == CKR_OK || rv == CKR_BUFFER_TOO_SMALL) *out_len = inner + GCM_IV_BYTES;
  if (rv == CKR_OK) memcpy(out, iv, GCM_IV_BYTES);
  if (rv != CKR_BUFFER_TOO_SMALL) set_waiting_iv(s, NULL);
  return rv;
}

/* C_DecryptInit with the layout check (the IV is the caller's in every mode). */
static CK_RV decrypt_init(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE key) {
  struct gcm g;
  if (!read_gcm(m, &g)) return real->C_DecryptInit(s, m, key);
  CK_RV rv = check_layout(&g);
  if (rv != CKR_OK) return rv;
  return g.v3 && gcm_layout == LAYOUT_V3 ? init_gcm(real->C_DecryptInit, s, &g, key) : real->C_DecryptInit(s, m, key);
}

/* C_Decrypt with SoftHSM's bad-tag answer replaced, when KMS_SHIM_BAD_TAG_RV says so. */
static CK_RV decrypt(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
  CK_RV rv = real->C_Decrypt(s, in, in_len, out, out_len);
  return rv == CKR_GENERAL_ERROR && bad_tag_rv != CKR_OK ? bad_tag_rv : rv;
}

/*
 * C_UnwrapKey with SoftHSM's answer to wrapped material that does not unwrap (CKR_GENERAL_ERROR,
 * as for a GCM tag) replaced by the standard's CKR_WRAPPED_KEY_INVALID, when the shim answers a bad
 * tag the standard's way too (KMS_SHIM_BAD_TAG_RV): the vendor it plays answers both by the book.
 */
static CK_RV shim_C_UnwrapKey(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE unwrapping, CK_BYTE_PTR wrapped, CK_ULONG wrapped_len,
                              CK_ATTRIBUTE_PTR templ, CK_ULONG count, CK_OBJECT_HANDLE_PTR key) {
  CK_RV rv = real->C_UnwrapKey(s, m, unwrapping, wrapped, wrapped_len, templ, count, key);
  return rv == CKR_GENERAL_ERROR && bad_tag_rv != CKR_OK ? CKR_WRAPPED_KEY_INVALID : rv;
}

/* C_OpenSession within KMS_SHIM_MAX_SESSIONS, noting the session when the shim keeps track. */
static CK_RV open_session(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify, CK_SESSION_HANDLE_PTR session) {
  if (!tracking()) return real->C_OpenSession(slot, flags, app, notify, session);
  pthread_mutex_lock(&sessions_lock);
  CK_RV rv = CKR_SESSION_COUNT;
  if (max_sessions <= 0 || sessions_on(slot, 0) < (CK_ULONG)max_sessions) {
    rv = real->C_OpenSession(slot, flags, app, notify, session);
    if (rv == CKR_OK && !new_session_entry(*session, slot, (flags & CKF_RW_SESSION) != 0)) {
      real->C_CloseSession(*session);
      rv = CKR_HOST_MEMORY;
    }
  }
  pthread_mutex_unlock(&sessions_lock);
  return rv;
}

static CK_RV shim_C_CloseSession(CK_SESSION_HANDLE s) {
  pthread_mutex_lock(&sessions_lock);
  CK_RV rv = real->C_CloseSession(s);
  if (rv == CKR_OK || rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED) forget_sessions(is_handle, s);
  pthread_mutex_unlock(&sessions_lock);
  return rv;
}

static CK_RV shim_C_CloseAllSessions(CK_SLOT_ID slot) {
  pthread_mutex_lock(&sessions_lock);
  CK_RV rv = real->C_CloseAllSessions(slot);
  if (rv == CKR_OK) forget_sessions(is_on_slot, slot);
  pthread_mutex_unlock(&sessions_lock);
  return rv;
}

static CK_RV shim_C_Finalize(CK_VOID_PTR reserved) {
  pthread_mutex_lock(&sessions_lock);
  CK_RV rv = real->C_Finalize(reserved);
  if (rv == CKR_OK) forget_sessions(is_any, 0);
  pthread_mutex_unlock(&sessions_lock);
  return rv;
}

/* C_GetTokenInfo with the shim's session limit and counts. */
static CK_RV shim_C_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info) {
  CK_RV rv = real->C_GetTokenInfo(slot, info);
  if (rv != CKR_OK || max_sessions <= 0) return rv;
  pthread_mutex_lock(&sessions_lock);
  info->ulMaxSessionCount = (CK_ULONG)max_sessions;
  info->ulSessionCount = sessions_on(slot, 0);
  info->ulRwSessionCount = sessions_on(slot, 1);
  pthread_mutex_unlock(&sessions_lock);
  return rv;
}

/* C_GetInfo under the emulated vendor's name. */
static CK_RV shim_C_GetInfo(CK_INFO_PTR info) {
  CK_RV rv = real->C_GetInfo(info);
  if (rv == CKR_OK && has_manufacturer) {
    memcpy(info->manufacturerID, manufacturer, sizeof info->manufacturerID);
    memcpy(info->libraryDescription, manufacturer, sizeof info->libraryDescription);
  }
  return rv;
}

/* Reads the vendor behaviours' settings; 0 (with a message) when one is not understood. */
static int load_vendor_settings(void) {
  const char *iv = env_text("KMS_SHIM_GCM_IV", KMS_SHIM_DEFAULT_GCM_IV);
  if (strcmp(iv, "caller") == 0) gcm_iv = IV_CALLER;
  else if (strcmp(iv, "token-params") == 0) gcm_iv = IV_TOKEN_PARAMS;
  else if (strcmp(iv, "token-output") == 0) gcm_iv = IV_TOKEN_OUTPUT;
  else {
    fprintf(stderr, "kms shim: KMS_SHIM_GCM_IV must be caller, token-params or token-output, not %s\n", iv);
    return 0;
  }
  const char *layout = env_text("KMS_SHIM_GCM_PARAMS", KMS_SHIM_DEFAULT_GCM_PARAMS);
  if (strcmp(layout, "any") == 0) gcm_layout = LAYOUT_ANY;
  else if (strcmp(layout, "v240") == 0) gcm_layout = LAYOUT_V240;
  else if (strcmp(layout, "v3") == 0) gcm_layout = LAYOUT_V3;
  else {
    fprintf(stderr, "kms shim: KMS_SHIM_GCM_PARAMS must be any, v240 or v3, not %s\n", layout);
    return 0;
  }
  max_sessions = env_long("KMS_SHIM_MAX_SESSIONS", KMS_SHIM_DEFAULT_MAX_SESSIONS);
  bad_tag_rv = (CK_RV)env_long("KMS_SHIM_BAD_TAG_RV", KMS_SHIM_DEFAULT_BAD_TAG_RV);
  const char *name = env_text("KMS_SHIM_MANUFACTURER", KMS_SHIM_DEFAULT_MANUFACTURER);
  has_manufacturer = *name != 0;
  size_t n = strlen(name);
  memset(manufacturer, ' ', sizeof manufacturer);
  memcpy(manufacturer, name, n < sizeof manufacturer ? n : sizeof manufacturer);
  return 1;
}

static CK_RV shim_C_Encrypt(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
  FORWARD(crypto_call, "C_Encrypt", encrypt(s, in, in_len, out, out_len));
}

static CK_RV shim_C_Decrypt(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
  FORWARD(crypto_call, "C_Decrypt", decrypt(s, in, in_len, out, out_len));
}

static CK_RV shim_C_GenerateRandom(CK_SESSION_HANDLE s, CK_BYTE_PTR out, CK_ULONG len) {
  FORWARD(crypto_call, "C_GenerateRandom", real->C_GenerateRandom(s, out, len));
}

static CK_RV shim_C_GenerateKey(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_HANDLE_PTR key) {
  FORWARD(crypto_call, "C_GenerateKey", real->C_GenerateKey(s, m, t, n, key));
}

static CK_RV shim_C_EncryptInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE key) {
  FORWARD(intercept, "C_EncryptInit", encrypt_init(s, m, key));
}

static CK_RV shim_C_DecryptInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE key) {
  FORWARD(intercept, "C_DecryptInit", decrypt_init(s, m, key));
}

static CK_RV shim_C_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify, CK_SESSION_HANDLE_PTR session) {
  FORWARD(intercept, "C_OpenSession", open_session(slot, flags, app, notify, session));
}

static CK_RV shim_C_Login(CK_SESSION_HANDLE s, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin, CK_ULONG length) {
  FORWARD(intercept, "C_Login", real->C_Login(s, user, pin, length));
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
  if (!load_vendor_settings()) {
    real = NULL;
    return;
  }
  shim = *real;
  shim.C_Encrypt = shim_C_Encrypt;
  shim.C_Decrypt = shim_C_Decrypt;
  shim.C_GenerateRandom = shim_C_GenerateRandom;
  shim.C_GenerateKey = shim_C_GenerateKey;
  shim.C_EncryptInit = shim_C_EncryptInit;
  shim.C_DecryptInit = shim_C_DecryptInit;
  shim.C_OpenSession = shim_C_OpenSession;
  shim.C_Login = shim_C_Login;
  shim.C_Initialize = shim_C_Initialize;
  shim.C_DestroyObject = shim_C_DestroyObject;
  shim.C_UnwrapKey = shim_C_UnwrapKey;
  /* Only what a vendor behaviour needs: with none asked for, these stay the real module's own. */
  if (tracking()) {
    shim.C_CloseSession = shim_C_CloseSession;
    shim.C_CloseAllSessions = shim_C_CloseAllSessions;
    shim.C_Finalize = shim_C_Finalize;
  }
  if (max_sessions > 0) shim.C_GetTokenInfo = shim_C_GetTokenInfo;
  if (has_manufacturer) shim.C_GetInfo = shim_C_GetInfo;
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list) {
  pthread_once(&loaded, load);
  if (!real || !list) return CKR_GENERAL_ERROR;
  *list = &shim;
  return CKR_OK;
}
