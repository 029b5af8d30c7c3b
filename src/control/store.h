// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_CONTROL_STORE_H_
#define ENCLAVIA_CONTROL_STORE_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "lib/base/result.h"

struct sqlite3;

// The control plane's state in SQLite (DIR/control/control.db): images, enclaves, events.
// Public data only (image digests, names, states, URLs, PCRs): never keys or plaintext.
namespace enclavia::control {

struct ImageRow {
  std::string id;  // SHA-256 of the EIF file, lowercase hex.
  std::string name;
  uint64_t size = 0;
  std::string describe_json;  // nitro-cli describe-eif output.
  std::string pcr0, pcr1, pcr2, pcr8;  // Hex; pcr8 "" when unsigned.
  int64_t created = 0;                 // Unix seconds.
};

struct EnclaveRow {
  std::string name;
  std::string image;  // ImageRow::id.
  std::string state;  // As last seen from the host agent.
  std::string url;
  uint32_t port = 0;
  std::string pcrs_json;  // {"0": hex, ...} as the host reported it.
  bool debug = false;
  uint32_t cpus = 0;
  uint64_t memory_mib = 0;
  int64_t created = 0;
  int64_t updated = 0;
  // storage_json: the volume spec ({"size_bytes", "backend", "witnesses"}), "{}" when none.
  std::string storage_json = "{}";
  // chain_json: the upgrade chain as the control plane last stored it (docs/upgrade.md), a JSON
  // array of base64 entries; "[]" for an unchained enclave.
  std::string chain_json = "[]";
};

// UpgradeRow is one request staged through this control plane: which image it runs, and its
// state: "staged", "revoked", "activated" or "failed" (the automatic activation's record).
struct UpgradeRow {
  std::string enclave;
  std::string request;  // The request hash, hex.
  std::string id;
  std::string image;    // ImageRow::id.
  std::string state;
  int64_t due_at = 0;
  int64_t updated = 0;
};

struct EventRow {
  int64_t id = 0;
  int64_t time = 0;  // Unix seconds.
  std::string enclave;
  std::string kind;  // "upload", "deploy", "remove", "restart", "state".
  std::string detail;
};

// Migration is one schema step; migrations.cc lists them in order (version i+1 = index i).
const std::vector<std::string>& Migrations();

// Store is the database. Thread-safe (one connection behind a mutex). Errors are kIo with the
// SQLite message, one line.
class Store {
 public:
  // Open opens or creates the database at `path` (WAL mode) and applies, in one transaction, the
  // migrations it has not seen yet. kFailedPrecondition when the file's schema is newer than this
  // build knows.
  static Result<std::unique_ptr<Store>> Open(const std::string& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // LatestVersion is the schema version this build writes.
  static int LatestVersion();
  Result<int> SchemaVersion();

  // PutImage inserts or, for a known id, updates the image's name.
  Result<void> PutImage(const ImageRow& image);
  Result<std::optional<ImageRow>> GetImage(const std::string& id);
  Result<std::vector<ImageRow>> ListImages();  // Oldest first.

  // PutEnclave inserts or replaces by name.
  Result<void> PutEnclave(const EnclaveRow& enclave);
  Result<std::optional<EnclaveRow>> GetEnclave(const std::string& name);
  Result<std::vector<EnclaveRow>> ListEnclaves();  // Sorted by name.
  // DeleteEnclave returns whether a row was deleted.
  Result<bool> DeleteEnclave(const std::string& name);

  // PutUpgrade inserts or replaces by (enclave, request).
  Result<void> PutUpgrade(const UpgradeRow& upgrade);
  // Upgrades lists an enclave's upgrades ("" : every enclave's), oldest due first.
  Result<std::vector<UpgradeRow>> Upgrades(const std::string& enclave);

  // AddEvent appends an event at the current time and returns its id.
  Result<int64_t> AddEvent(const std::string& enclave, const std::string& kind,
                           const std::string& detail);
  // Events returns up to `limit` events with id > after, oldest first.
  Result<std::vector<EventRow>> Events(int64_t after, int limit);

 private:
  explicit Store(sqlite3* db) : db_(db) {}
  std::mutex mu_;
  sqlite3* db_;  // Owned.
};

}  // namespace enclavia::control

#endif  // ENCLAVIA_CONTROL_STORE_H_
