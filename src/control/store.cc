// SPDX-License-Identifier: Apache-2.0
#include "control/store.h"

#include <sqlite3.h>

#include <chrono>
#include <utility>

namespace enclavia::control {
namespace {

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Error DbError(sqlite3* db, std::string_view what) {
  return Error(Code::kIo, "control.db: " + std::string(what) + ": " + sqlite3_errmsg(db));
}

// Stmt owns one prepared statement; Bind* take 1-based indexes, columns are 0-based.
class Stmt {
 public:
  static Result<Stmt> Prepare(sqlite3* db, std::string_view sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr) !=
        SQLITE_OK) {
      return DbError(db, "prepare");
    }
    return Stmt(db, stmt);
  }
  Stmt(Stmt&& other) noexcept : db_(other.db_), stmt_(std::exchange(other.stmt_, nullptr)) {}
  Stmt& operator=(Stmt&&) = delete;
  Stmt(const Stmt&) = delete;
  ~Stmt() { sqlite3_finalize(stmt_); }

  Stmt& Bind(int i, const std::string& text) {
    sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(int i, int64_t value) {
    sqlite3_bind_int64(stmt_, i, value);
    return *this;
  }

  // Step returns true for a row, false when done.
  Result<bool> Step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) {
      return true;
    }
    if (rc == SQLITE_DONE) {
      return false;
    }
    return DbError(db_, "step");
  }
  Result<void> Run() {
    ASSIGN_OR_RETURN(bool row, Step());
    (void)row;
    return Ok();
  }

  std::string Text(int i) const {
    const unsigned char* text = sqlite3_column_text(stmt_, i);
    return text == nullptr ? std::string()
                           : std::string(reinterpret_cast<const char*>(text),
                                         static_cast<size_t>(sqlite3_column_bytes(stmt_, i)));
  }
  int64_t Int(int i) const { return sqlite3_column_int64(stmt_, i); }

 private:
  Stmt(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

Result<void> Exec(sqlite3* db, const std::string& sql, std::string_view what) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
    std::string text = message != nullptr ? message : sqlite3_errmsg(db);
    sqlite3_free(message);
    return Error(Code::kIo, "control.db: " + std::string(what) + ": " + text);
  }
  return Ok();
}

// Migrate brings the schema to the latest version inside one transaction.
Result<void> Migrate(sqlite3* db) {
  RETURN_IF_ERROR(Exec(db, "BEGIN IMMEDIATE", "begin"));
  auto body = [&]() -> Result<void> {
    RETURN_IF_ERROR(Exec(db, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
                         "create schema_version"));
    ASSIGN_OR_RETURN(Stmt read, Stmt::Prepare(db, "SELECT max(version) FROM schema_version"));
    ASSIGN_OR_RETURN(bool row, read.Step());
    int64_t version = row ? read.Int(0) : 0;
    const auto& migrations = Migrations();
    auto latest = static_cast<int64_t>(migrations.size());
    if (version > latest) {
      return Error(Code::kFailedPrecondition,
                   "control.db: schema version " + std::to_string(version) +
                       " is newer than this enclavia-control knows (" + std::to_string(latest) +
                       "): run a newer enclavia");
    }
    for (int64_t v = version; v < latest; ++v) {
      RETURN_IF_ERROR(Exec(db, migrations[static_cast<size_t>(v)],
                           "migration " + std::to_string(v + 1)));
    }
    if (version < latest) {
      RETURN_IF_ERROR(Exec(db, "DELETE FROM schema_version", "schema_version"));
      ASSIGN_OR_RETURN(Stmt write, Stmt::Prepare(db, "INSERT INTO schema_version VALUES (?)"));
      RETURN_IF_ERROR(write.Bind(1, latest).Run());
    }
    return Ok();
  };
  Result<void> done = body();
  if (!done) {
    (void)Exec(db, "ROLLBACK", "rollback");
    return done;
  }
  return Exec(db, "COMMIT", "commit");
}

ImageRow ReadImage(const Stmt& s) {
  ImageRow r;
  r.id = s.Text(0);
  r.name = s.Text(1);
  r.size = static_cast<uint64_t>(s.Int(2));
  r.describe_json = s.Text(3);
  r.pcr0 = s.Text(4);
  r.pcr1 = s.Text(5);
  r.pcr2 = s.Text(6);
  r.pcr8 = s.Text(7);
  r.created = s.Int(8);
  return r;
}

EnclaveRow ReadEnclave(const Stmt& s) {
  EnclaveRow r;
  r.name = s.Text(0);
  r.image = s.Text(1);
  r.state = s.Text(2);
  r.url = s.Text(3);
  r.port = static_cast<uint32_t>(s.Int(4));
  r.pcrs_json = s.Text(5);
  r.debug = s.Int(6) != 0;
  r.cpus = static_cast<uint32_t>(s.Int(7));
  r.memory_mib = static_cast<uint64_t>(s.Int(8));
  r.created = s.Int(9);
  r.updated = s.Int(10);
  r.storage_json = s.Text(11);
  r.chain_json = s.Text(12);
  return r;
}

constexpr std::string_view kImageColumns =
    "SELECT id, name, size, describe_json, pcr0, pcr1, pcr2, pcr8, created FROM images";
constexpr std::string_view kEnclaveColumns =
    "SELECT name, image, state, url, port, pcrs_json, debug, cpus, memory_mib, created, updated, "
    "storage_json, chain_json FROM enclaves";

}  // namespace

Result<std::unique_ptr<Store>> Store::Open(const std::string& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                           nullptr);
  std::unique_ptr<Store> store(new Store(db));  // Closes db on every path below.
  if (rc != SQLITE_OK) {
    return Error(Code::kIo, "cannot open " + path + ": " +
                                (db != nullptr ? sqlite3_errmsg(db) : "out of memory"));
  }
  sqlite3_busy_timeout(db, 5000);
  RETURN_IF_ERROR(Exec(db, "PRAGMA journal_mode=WAL", "WAL"));
  RETURN_IF_ERROR(Exec(db, "PRAGMA foreign_keys=ON", "foreign keys"));
  RETURN_IF_ERROR(Migrate(db));
  return store;
}

Store::~Store() { sqlite3_close_v2(db_); }

int Store::LatestVersion() { return static_cast<int>(Migrations().size()); }

Result<int> Store::SchemaVersion() {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_, "SELECT max(version) FROM schema_version"));
  ASSIGN_OR_RETURN(bool row, s.Step());
  return row ? static_cast<int>(s.Int(0)) : 0;
}

Result<void> Store::PutImage(const ImageRow& image) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_,
                                         "INSERT INTO images VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                                         "ON CONFLICT(id) DO UPDATE SET name = excluded.name"));
  return s.Bind(1, image.id)
      .Bind(2, image.name)
      .Bind(3, static_cast<int64_t>(image.size))
      .Bind(4, image.describe_json)
      .Bind(5, image.pcr0)
      .Bind(6, image.pcr1)
      .Bind(7, image.pcr2)
      .Bind(8, image.pcr8)
      .Bind(9, image.created != 0 ? image.created : Now())
      .Run();
}

Result<std::optional<ImageRow>> Store::GetImage(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_, std::string(kImageColumns) + " WHERE id = ?"));
  s.Bind(1, id);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) {
    return std::optional<ImageRow>();
  }
  return std::optional<ImageRow>(ReadImage(s));
}

Result<std::vector<ImageRow>> Store::ListImages() {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_, std::string(kImageColumns) +
                                                  " ORDER BY created, id"));
  std::vector<ImageRow> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) {
      return out;
    }
    out.push_back(ReadImage(s));
  }
}

Result<void> Store::PutEnclave(const EnclaveRow& e) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(
      Stmt s, Stmt::Prepare(db_, "INSERT OR REPLACE INTO enclaves (name, image, state, url, port, "
                                 "pcrs_json, debug, cpus, memory_mib, created, updated, "
                                 "storage_json, chain_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                                 "?, ?, ?)"));
  int64_t now = Now();
  return s.Bind(1, e.name)
      .Bind(2, e.image)
      .Bind(3, e.state)
      .Bind(4, e.url)
      .Bind(5, int64_t{e.port})
      .Bind(6, e.pcrs_json)
      .Bind(7, int64_t{e.debug ? 1 : 0})
      .Bind(8, int64_t{e.cpus})
      .Bind(9, static_cast<int64_t>(e.memory_mib))
      .Bind(10, e.created != 0 ? e.created : now)
      .Bind(11, now)
      .Bind(12, e.storage_json)
      .Bind(13, e.chain_json)
      .Run();
}

Result<void> Store::PutUpgrade(const UpgradeRow& u) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_, "INSERT OR REPLACE INTO upgrades (enclave, request, "
                                              "id, image, state, due_at, updated) VALUES (?, ?, "
                                              "?, ?, ?, ?, ?)"));
  return s.Bind(1, u.enclave)
      .Bind(2, u.request)
      .Bind(3, u.id)
      .Bind(4, u.image)
      .Bind(5, u.state)
      .Bind(6, u.due_at)
      .Bind(7, Now())
      .Run();
}

Result<std::vector<UpgradeRow>> Store::Upgrades(const std::string& enclave) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_, "SELECT enclave, request, id, image, state, due_at, "
                                              "updated FROM upgrades WHERE ? = '' OR enclave = ? "
                                              "ORDER BY due_at, enclave"));
  s.Bind(1, enclave).Bind(2, enclave);
  std::vector<UpgradeRow> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) {
      break;
    }
    UpgradeRow u;
    u.enclave = s.Text(0);
    u.request = s.Text(1);
    u.id = s.Text(2);
    u.image = s.Text(3);
    u.state = s.Text(4);
    u.due_at = s.Int(5);
    u.updated = s.Int(6);
    out.push_back(std::move(u));
  }
  return out;
}

Result<std::optional<EnclaveRow>> Store::GetEnclave(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_, std::string(kEnclaveColumns) + " WHERE name = ?"));
  s.Bind(1, name);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) {
    return std::optional<EnclaveRow>();
  }
  return std::optional<EnclaveRow>(ReadEnclave(s));
}

Result<std::vector<EnclaveRow>> Store::ListEnclaves() {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_, std::string(kEnclaveColumns) + " ORDER BY name"));
  std::vector<EnclaveRow> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) {
      return out;
    }
    out.push_back(ReadEnclave(s));
  }
}

Result<bool> Store::DeleteEnclave(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_, "DELETE FROM enclaves WHERE name = ?"));
  RETURN_IF_ERROR(s.Bind(1, name).Run());
  return sqlite3_changes(db_) > 0;
}

Result<int64_t> Store::AddEvent(const std::string& enclave, const std::string& kind,
                                const std::string& detail) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_, "INSERT INTO events (time, enclave, kind, detail) "
                                              "VALUES (?, ?, ?, ?)"));
  RETURN_IF_ERROR(s.Bind(1, Now()).Bind(2, enclave).Bind(3, kind).Bind(4, detail).Run());
  return static_cast<int64_t>(sqlite3_last_insert_rowid(db_));
}

Result<std::vector<EventRow>> Store::Events(int64_t after, int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_, "SELECT id, time, enclave, kind, detail FROM events "
                                              "WHERE id > ? ORDER BY id LIMIT ?"));
  s.Bind(1, after).Bind(2, int64_t{limit});
  std::vector<EventRow> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) {
      return out;
    }
    out.push_back(EventRow{s.Int(0), s.Int(1), s.Text(2), s.Text(3), s.Text(4)});
  }
}

}  // namespace enclavia::control
