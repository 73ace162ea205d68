/*
 * Calls a PKCS#11 module as only C can, for test/hsm/shim-emulation.test.ts: with the 40-byte
 * CK_GCM_PARAMS layout (no ulIvBits), which pkcs11js cannot build, and with the NULL and short output
 * buffers of C_Encrypt's length query, whose answers pkcs11js does not hand back.
 *
 *   gcm-layout-probe MODULE LABEL PIN KEY IV AAD DATA CIPHERTEXT layouts
 *       for each layout (v3: 40 bytes, v240: 48 bytes): C_EncryptInit with IV and AAD, C_Encrypt of
 *       DATA; C_DecryptInit with IV and AAD, C_Decrypt of CIPHERTEXT.
 *   gcm-layout-probe MODULE LABEL PIN KEY IV AAD DATA CIPHERTEXT token-output
 *       C_EncryptInit with a zeroed IV (v240 layout), then C_Encrypt of DATA asking the length (NULL
 *       output), with 5 bytes, with one byte short and with enough; then C_DecryptInit with the IV
 *       the output starts with and C_Decrypt of the rest. IV and CIPHERTEXT are not used.
 *
 * KEY (an AES key made as a session object), IV, AAD, DATA and CIPHERTEXT are hex. Prints one JSON
 * object: each call's CKR, and what it returned, in hex.
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
#include <stdlib.h>
#include <string.h>

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

struct bytes {
  CK_BYTE data[4096];
  CK_ULONG length;
};

static CK_FUNCTION_LIST_PTR p11;
static CK_SESSION_HANDLE session;
static CK_OBJECT_HANDLE key;

static void fail(const char *what, CK_RV rv) {
  fprintf(stderr, "gcm-layout-probe: %s failed: 0x%lx\n", what, (unsigned long)rv);
  exit(1);
}

static struct bytes unhex(const char *text) {
  struct bytes out = {.length = 0};
  size_t n = strlen(text);
  if (n % 2 || n / 2 > sizeof out.data) fail("reading hex", 0);
  for (size_t i = 0; i < n; i += 2) {
    unsigned int byte;
    if (sscanf(text + i, "%2x", &byte) != 1) fail("reading hex", 0);
    out.data[out.length++] = (CK_BYTE)byte;
  }
  return out;
}

static void print_hex(const CK_BYTE *data, CK_ULONG length) {
  putchar('"');
  for (CK_ULONG i = 0; i < length; i++) printf("%02x", data[i]);
  putchar('"');
}

/* A GCM mechanism in the chosen layout, laid out in `v240` or `v3p` (which must outlive its use). */
static CK_MECHANISM gcm(int v3, gcm_params_v240 *v240, gcm_params_v3 *v3p, struct bytes *iv, struct bytes *aad) {
  *v240 = (gcm_params_v240){iv->data, iv->length, 8 * iv->length, aad->data, aad->length, 128};
  *v3p = (gcm_params_v3){iv->data, iv->length, aad->data, aad->length, 128};
  CK_MECHANISM m = {CKM_AES_GCM, v3 ? (CK_VOID_PTR)v3p : (CK_VOID_PTR)v240, v3 ? sizeof *v3p : sizeof *v240};
  return m;
}

static void layouts(struct bytes *iv, struct bytes *aad, struct bytes *data, struct bytes *ciphertext) {
  printf("{");
  for (int v3 = 1; v3 >= 0; v3--) {
    gcm_params_v240 v240;
    gcm_params_v3 v3p;
    CK_MECHANISM m = gcm(v3, &v240, &v3p, iv, aad);
    struct bytes out = {.length = sizeof out.data};
    CK_RV encrypt_init = p11->C_EncryptInit(session, &m, key);
    CK_RV encrypt = encrypt_init == CKR_OK ? p11->C_Encrypt(session, data->data, data->length, out.data, &out.length) : CKR_OK;
    if (encrypt_init != CKR_OK || encrypt != CKR_OK) out.length = 0;
    printf("%s\"%s\":{\"encryptInit\":%lu,\"encrypt\":%lu,\"ciphertext\":", v3 ? "" : ",", v3 ? "v3" : "v240", (unsigned long)encrypt_init, (unsigned long)encrypt);
    print_hex(out.data, out.length);
    m = gcm(v3, &v240, &v3p, iv, aad);
    struct bytes plain = {.length = sizeof plain.data};
    CK_RV decrypt_init = p11->C_DecryptInit(session, &m, key);
    CK_RV decrypt = decrypt_init == CKR_OK ? p11->C_Decrypt(session, ciphertext->data, ciphertext->length, plain.data, &plain.length) : CKR_OK;
    if (decrypt_init != CKR_OK || decrypt != CKR_OK) plain.length = 0;
    printf(",\"decryptInit\":%lu,\"decrypt\":%lu,\"plaintext\":", (unsigned long)decrypt_init, (unsigned long)decrypt);
    print_hex(plain.data, plain.length);
    printf("}");
  }
  printf("}\n");
}

static void print_length(const char *name, CK_RV rv, CK_ULONG length) {
  printf("\"%s\":{\"rv\":%lu,\"length\":%lu},", name, (unsigned long)rv, (unsigned long)length);
}

static void token_output(struct bytes *aad, struct bytes *data) {
  struct bytes iv = {.length = 12};
  memset(iv.data, 0, iv.length);
  gcm_params_v240 v240;
  gcm_params_v3 v3p;
  CK_MECHANISM m = gcm(0, &v240, &v3p, &iv, aad);
  printf("{\"encryptInit\":%lu,", (unsigned long)p11->C_EncryptInit(session, &m, key));
  struct bytes out;
  CK_ULONG needed = 0;
  CK_RV rv = p11->C_Encrypt(session, data->data, data->length, NULL, &needed);
  print_length("query", rv, needed);
  out.length = 5;
  rv = p11->C_Encrypt(session, data->data, data->length, out.data, &out.length);
  print_length("short", rv, out.length);
  out.length = needed - 1;
  rv = p11->C_Encrypt(session, data->data, data->length, out.data, &out.length);
  print_length("almost", rv, out.length);
  out.length = needed;
  rv = p11->C_Encrypt(session, data->data, data->length, out.data, &out.length);
  printf("\"encrypt\":{\"rv\":%lu,\"length\":%lu,\"output\":", (unsigned long)rv, (unsigned long)out.length);
  print_hex(out.data, rv == CKR_OK ? out.length : 0);
  printf("},");
  if (rv != CKR_OK || out.length < 12) {
    printf("\"decryptInit\":null,\"decrypt\":null,\"plaintext\":\"\"}\n");
    return;
  }
  /* Decryption as in every mode: the caller hands back the IV it was given. */
  struct bytes given = {.length = 12};
  memcpy(given.data, out.data, given.length);
  m = gcm(0, &v240, &v3p, &given, aad);
  struct bytes plain = {.length = sizeof plain.data};
  CK_RV decrypt_init = p11->C_DecryptInit(session, &m, key);
  CK_RV decrypt = decrypt_init == CKR_OK ? p11->C_Decrypt(session, out.data + 12, out.length - 12, plain.data, &plain.length) : CKR_OK;
  printf("\"decryptInit\":%lu,\"decrypt\":%lu,\"plaintext\":", (unsigned long)decrypt_init, (unsigned long)decrypt);
  print_hex(plain.data, decrypt_init == CKR_OK && decrypt == CKR_OK ? plain.length : 0);
  printf("}\n");
}

int main(int argc, char **argv) {
  if (argc != 10) {
    fprintf(stderr, "usage: %s MODULE LABEL PIN KEY IV AAD DATA CIPHERTEXT layouts|token-output\n", argv[0]);
    return 2;
  }
  void *module = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!module) fail(dlerror(), 0);
  CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(module, "C_GetFunctionList");
  CK_RV rv;
  if (!get) fail("C_GetFunctionList lookup", 0);
  if ((rv = get(&p11)) != CKR_OK) fail("C_GetFunctionList", rv);
  if ((rv = p11->C_Initialize(NULL)) != CKR_OK) fail("C_Initialize", rv);

  CK_SLOT_ID slots[64];
  CK_ULONG slot_count = 64;
  if ((rv = p11->C_GetSlotList(CK_TRUE, slots, &slot_count)) != CKR_OK) fail("C_GetSlotList", rv);
  char label[33];
  memset(label, ' ', 32);
  label[32] = 0;
  memcpy(label, argv[2], strlen(argv[2]) < 32 ? strlen(argv[2]) : 32);
  CK_SLOT_ID slot = (CK_SLOT_ID)-1;
  for (CK_ULONG i = 0; i < slot_count; i++) {
    CK_TOKEN_INFO info;
    if (p11->C_GetTokenInfo(slots[i], &info) == CKR_OK && memcmp(info.label, label, 32) == 0) slot = slots[i];
  }
  if (slot == (CK_SLOT_ID)-1) fail("finding the token", 0);
  if ((rv = p11->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &session)) != CKR_OK) fail("C_OpenSession", rv);
  if ((rv = p11->C_Login(session, CKU_USER, (CK_UTF8CHAR_PTR)argv[3], strlen(argv[3]))) != CKR_OK) fail("C_Login", rv);

  struct bytes value = unhex(argv[4]), iv = unhex(argv[5]), aad = unhex(argv[6]), data = unhex(argv[7]), ciphertext = unhex(argv[8]);
  CK_OBJECT_CLASS class = CKO_SECRET_KEY;
  CK_KEY_TYPE type = CKK_AES;
  CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
  CK_ATTRIBUTE template[] = {
      {CKA_CLASS, &class, sizeof class}, {CKA_KEY_TYPE, &type, sizeof type}, {CKA_TOKEN, &no, sizeof no},
      {CKA_ENCRYPT, &yes, sizeof yes},   {CKA_DECRYPT, &yes, sizeof yes},    {CKA_VALUE, value.data, value.length},
  };
  if ((rv = p11->C_CreateObject(session, template, sizeof template / sizeof template[0], &key)) != CKR_OK) fail("C_CreateObject", rv);

  if (strcmp(argv[9], "layouts") == 0) layouts(&iv, &aad, &data, &ciphertext);
  else if (strcmp(argv[9], "token-output") == 0) token_output(&aad, &data);
  else fail("choosing a scenario", 0);
  p11->C_CloseSession(session);
  p11->C_Finalize(NULL);
  return 0;
}
