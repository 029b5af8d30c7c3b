// SPDX-License-Identifier: Apache-2.0
// The control plane's schema, as an ordered list of migrations: never edit or reorder an entry
// that has shipped; append a new one. Entry i takes the schema from version i to i + 1.
#include <string>
#include <vector>

#include "control/store.h"

namespace enclavia::control {

const std::vector<std::string>& Migrations() {
  static const auto* const kMigrations = new std::vector<std::string>{
      // 1: images, enclaves, events.
      R"sql(
        CREATE TABLE images (
          id TEXT PRIMARY KEY NOT NULL,
          name TEXT NOT NULL,
          size INTEGER NOT NULL,
          describe_json TEXT NOT NULL,
          pcr0 TEXT NOT NULL,
          pcr1 TEXT NOT NULL,
          pcr2 TEXT NOT NULL,
          pcr8 TEXT NOT NULL DEFAULT '',
          created INTEGER NOT NULL
        );
        CREATE TABLE enclaves (
          name TEXT PRIMARY KEY NOT NULL,
          image TEXT NOT NULL REFERENCES images(id),
          state TEXT NOT NULL,
          url TEXT NOT NULL,
          port INTEGER NOT NULL,
          pcrs_json TEXT NOT NULL,
          debug INTEGER NOT NULL,
          cpus INTEGER NOT NULL,
          memory_mib INTEGER NOT NULL,
          created INTEGER NOT NULL,
          updated INTEGER NOT NULL
        );
        CREATE TABLE events (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          time INTEGER NOT NULL,
          enclave TEXT NOT NULL,
          kind TEXT NOT NULL,
          detail TEXT NOT NULL
        );
        CREATE INDEX events_enclave ON events(enclave);
      )sql",
      // 2: the volume an enclave was deployed with ({} when none), as sent to the host agent.
      R"sql(
        ALTER TABLE enclaves ADD COLUMN storage_json TEXT NOT NULL DEFAULT '{}';
      )sql",
      // 3: the enclave's upgrade chain (docs/upgrade.md) as a JSON array of base64 entries
      // ([] when unchained), and the image each staged request will run.
      R"sql(
        ALTER TABLE enclaves ADD COLUMN chain_json TEXT NOT NULL DEFAULT '[]';
        CREATE TABLE upgrades (
          enclave TEXT NOT NULL,
          request TEXT NOT NULL,
          id TEXT NOT NULL,
          image TEXT NOT NULL,
          state TEXT NOT NULL,
          due_at INTEGER NOT NULL,
          updated INTEGER NOT NULL,
          PRIMARY KEY (enclave, request)
        );
      )sql",
  };
  return *kMigrations;
}

}  // namespace enclavia::control
