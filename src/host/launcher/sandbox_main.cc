// SPDX-License-Identifier: Apache-2.0
// enclavia-sandbox: the local stand-in for the Nitro hypervisor of one enclave
// (docs/local-provider.md). Started detached by LocalProvider. Flags → RunSandbox.
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "host/launcher/sandbox.h"

int main(int argc, char** argv) {
  CLI::App app{"enclavia-sandbox: boots one EIF into namespaces and supervises it"};
  enclavia::host::SandboxOptions o;
  app.add_option("--dir", o.dir, "Enclave directory (exists)")->required();
  app.add_option("--eif", o.eif_path, "Image to boot")->required();
  app.add_option("--name", o.name, "Enclave name")->required();
  app.add_option("--enclave-id", o.enclave_id, "Enclave id (local-<name>-<hex>)")->required();
  app.add_option("--instance-id", o.instance_id, "Parent instance id, measured into PCR4")
      ->required();
  app.add_option("--ca-dir", o.ca_dir, "NSM simulator CA directory")->required();
  app.add_option("--kms-dir", o.kms_dir, "Local KMS simulator key directory (none: no KMS)");
  app.add_flag("--debug", o.debug, "Debug mode: console open, PCRs attested as zero");
  app.add_option("--cpus", o.cpus, "CPUs")->required()->check(CLI::Range(1, 1024));
  app.add_option("--memory-mib", o.memory_mib, "Memory in MiB")
      ->required()
      ->check(CLI::Range(16, 1 << 24));
  app.add_option("--ready-fd", o.ready_fd, "Descriptor told \"ready\" or \"error: …\"");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {
      return app.exit(e);
    }
    std::cerr << "enclavia-sandbox: " << e.what() << "\n";
    return 1;
  }
  return enclavia::host::RunSandbox(o);
}
