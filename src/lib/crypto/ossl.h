// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_CRYPTO_OSSL_H_
#define ENCLAVIA_LIB_CRYPTO_OSSL_H_

#include <memory>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace enclavia::ossl {

// Free<T> frees one OpenSSL type; Ptr<T> owns one object of it. Every type is listed once here.
template <typename T>
struct Free;
#define ENCLAVIA_OSSL_FREE(T, fn)                   \
  template <>                                       \
  struct Free<T> {                                  \
    void operator()(T* p) const noexcept { fn(p); } \
  }
ENCLAVIA_OSSL_FREE(EVP_PKEY, EVP_PKEY_free);
ENCLAVIA_OSSL_FREE(EVP_PKEY_CTX, EVP_PKEY_CTX_free);
ENCLAVIA_OSSL_FREE(EVP_MD_CTX, EVP_MD_CTX_free);
ENCLAVIA_OSSL_FREE(EVP_CIPHER_CTX, EVP_CIPHER_CTX_free);
ENCLAVIA_OSSL_FREE(EVP_MAC, EVP_MAC_free);
ENCLAVIA_OSSL_FREE(EVP_MAC_CTX, EVP_MAC_CTX_free);
ENCLAVIA_OSSL_FREE(EVP_KDF, EVP_KDF_free);
ENCLAVIA_OSSL_FREE(EVP_KDF_CTX, EVP_KDF_CTX_free);
ENCLAVIA_OSSL_FREE(X509, X509_free);
ENCLAVIA_OSSL_FREE(X509_STORE, X509_STORE_free);
ENCLAVIA_OSSL_FREE(X509_STORE_CTX, X509_STORE_CTX_free);
ENCLAVIA_OSSL_FREE(X509_NAME, X509_NAME_free);
ENCLAVIA_OSSL_FREE(X509_EXTENSION, X509_EXTENSION_free);
// ASN1_INTEGER, ASN1_TIME and ASN1_OCTET_STRING are all ASN1_STRING, so one entry serves them.
ENCLAVIA_OSSL_FREE(ASN1_STRING, ASN1_STRING_free);
ENCLAVIA_OSSL_FREE(BIGNUM, BN_free);
ENCLAVIA_OSSL_FREE(BIO, BIO_free_all);
ENCLAVIA_OSSL_FREE(ECDSA_SIG, ECDSA_SIG_free);
ENCLAVIA_OSSL_FREE(X509_SIG, X509_SIG_free);
ENCLAVIA_OSSL_FREE(X509_ALGOR, X509_ALGOR_free);
ENCLAVIA_OSSL_FREE(PKCS8_PRIV_KEY_INFO, PKCS8_PRIV_KEY_INFO_free);
// Ptr<STACK_OF(X509)> frees the stack only: the certificates in it are borrowed, not owned.
ENCLAVIA_OSSL_FREE(STACK_OF(X509), sk_X509_free);
#undef ENCLAVIA_OSSL_FREE

template <typename T>
using Ptr = std::unique_ptr<T, Free<T>>;

}  // namespace enclavia::ossl

#endif  // ENCLAVIA_LIB_CRYPTO_OSSL_H_
