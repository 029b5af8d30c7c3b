// SPDX-License-Identifier: Apache-2.0
// enclavia: the command-line tool. Flags are parsed here; each command lives in its own file.
#include <CLI/CLI.hpp>

#include <iostream>

#include "cli/attest.h"
#include "cli/build.h"
#include "cli/channel_cmds.h"
#include "cli/keys_cmds.h"
#include "cli/platform_cmds.h"
#include "cli/upgrade_cmds.h"
#include "lib/crypto/random.h"
#include "lib/sys/process.h"

int main(int argc, char** argv) {
  enclavia::sys::TuneAllocatorForStreaming();
  if (auto init = enclavia::crypto::Init(); !init) {
    std::cerr << "enclavia: " << init.error().message() << "\n";
    return 1;
  }
  CLI::App app{"Enclavia: trusted enclaves, as easy as containers"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "enclavia 0.1.0");
  CLI::App* attest = app.add_subcommand("attest", "Nitro attestation documents");
  attest->require_subcommand(1);

  enclavia::cli::AttestVerifyFlags verify;
  CLI::App* v = attest->add_subcommand("verify", "Verify an attestation document");
  v->add_option("FILE", verify.file, "Document: raw CBOR or base64 text")->required();
  v->add_option("--root", verify.roots, "Also trust the root certificate(s) in this PEM file");
  v->add_flag("--no-aws-root", verify.no_aws_root, "Do not trust the AWS Nitro root G1");
  v->add_option("--at", verify.at, "Verification time: RFC 3339 or 'now'")->default_val("now");
  v->add_option("--pcr", verify.pcrs, "Require PCR N to equal HEX (N=HEX)");
  v->add_option("--nonce", verify.nonce_hex, "Require this nonce (hex)");
  v->add_option("--public-key", verify.public_key_hex, "Require this public_key (hex)");
  v->add_option("--max-age", verify.max_age_s, "Reject documents older than this many seconds");
  v->add_flag("--allow-debug", verify.allow_debug, "Accept debug-mode enclaves (PCR0 zero)");
  v->add_flag("--json", verify.json, "Print the result as JSON");

  enclavia::cli::AttestSimulateFlags simulate;
  CLI::App* s = attest->add_subcommand("simulate", "Sign a document with the local NSM simulator");
  s->add_option("--state-dir", simulate.state_dir, "Simulator state (root CA)")->required();
  s->add_option("--pcr", simulate.pcrs, "Set PCR N to HEX (48 bytes) at boot (N=HEX)");
  s->add_option("--user-data", simulate.user_data_hex, "user_data (hex, at most 1024 bytes)");
  s->add_option("--nonce", simulate.nonce_hex, "nonce (hex, at most 1024 bytes)");
  s->add_option("--public-key", simulate.public_key_hex, "public_key (hex, at most 1024 bytes)");
  s->add_flag("--debug", simulate.debug, "Simulate a debug-mode enclave (PCR0/1/2/8 zero)");
  s->add_option("-o,--output", simulate.output, "Where to write the document (raw CBOR)")
      ->required();

  enclavia::cli::BuildFlags build;
  CLI::App* b = app.add_subcommand("build", "Build a reproducible enclave image (EIF)");
  b->add_option("DIR", build.dir, "Directory holding the Enclaviafile (or the file)")
      ->default_val(".");
  b->add_option("-o,--output", build.output, "Write the image here (else only measure it)");
  b->add_flag("--json", build.json, "Print the measurements as JSON, like nitro-cli");
  b->add_flag("--update-lock", build.update_lock, "Accept inputs that differ from enclavia.lock");
  b->add_option("--sign-cert", build.sign_cert, "Sign the image: certificate (PEM)");
  b->add_option("--sign-key", build.sign_key, "Sign the image: private key (PEM)");
  b->add_flag("!--no-progress", build.progress, "Do not draw a progress line");

  enclavia::cli::DescribeFlags describe;
  CLI::App* d = app.add_subcommand("describe", "Describe an enclave image, like nitro-cli describe-eif");
  d->add_option("FILE", describe.file, "The EIF")->required();
  d->add_flag("--json", describe.json, "Print JSON, like nitro-cli");

  enclavia::cli::ReproduceFlags reproduce;
  CLI::App* r = app.add_subcommand(
      "reproduce", "Rebuild from source and lock, and compare with an image, PCRs or an attestation");
  r->add_option("DIR", reproduce.dir, "Directory holding the Enclaviafile and enclavia.lock")
      ->default_val(".");
  r->add_option("--expect", reproduce.expect_eif, "Compare with this image (EIF)");
  r->add_option("--pcrs", reproduce.pcrs_json, "Compare with these PCRs (nitro-cli JSON)");
  r->add_option("--attestation", reproduce.attestation,
                "Compare with the PCRs this attestation document proves");
  r->add_option("--root", reproduce.roots, "--attestation: also trust this root (PEM)");
  r->add_flag("--no-aws-root", reproduce.no_aws_root, "--attestation: do not trust the AWS root");
  r->add_option("--at", reproduce.at, "--attestation: verification time (RFC 3339 or 'now')")
      ->default_val("now");
  r->add_flag("--json", reproduce.json, "Print the comparison as JSON");

  enclavia::cli::ProxyFlags proxy;
  CLI::App* px = app.add_subcommand(
      "proxy", "Serve legacy TCP clients through an attested channel to an enclave's port");
  px->add_option("--listen", proxy.listen, "Where to accept TCP connections (IP:PORT)")->required();
  px->add_option("--enclave", proxy.enclave, "The host relay: ws://HOST:PORT/ or wss://…")
      ->required();
  px->add_option("--trust", proxy.trust, "Trust file (TOML): roots, PCR sets, max_age")
      ->required();
  px->add_option("--port", proxy.port, "The enclave's application port")->default_val(80);
  px->add_option("--ca-file", proxy.tls.ca_file, "wss://: trust these CAs (PEM)");
  px->add_flag("--insecure-tls", proxy.tls.insecure,
               "wss://: skip the TLS certificate check (the enclave is still verified)");

  enclavia::cli::ConnectFlags connect;
  CLI::App* cn = app.add_subcommand(
      "connect", "Pipe stdin/stdout to an enclave's port over an attested channel, like nc");
  cn->add_option("URL", connect.enclave, "The host relay: ws://HOST:PORT/ or wss://…")
      ->required();
  cn->add_option("--trust", connect.trust, "Trust file (TOML)")->required();
  cn->add_option("--port", connect.port, "The enclave's application port")->default_val(80);
  cn->add_flag("--print-attestation", connect.print_attestation,
               "Print the verified attestation (JSON) on stderr");
  cn->add_flag("--attestation-only", connect.attestation_only,
               "Verify, print the attestation (JSON) on stdout and exit");
  cn->add_option("--ca-file", connect.tls.ca_file, "wss://: trust these CAs (PEM)");
  cn->add_flag("--insecure-tls", connect.tls.insecure,
               "wss://: skip the TLS certificate check (the enclave is still verified)");

  enclavia::cli::VerifyFlags vf;
  CLI::App* vy = app.add_subcommand(
      "verify", "Connect to an enclave, verify its attestation against a trust file, print what was verified");
  vy->add_option("URL", vf.enclave, "The host relay: ws://HOST:PORT/ or wss://…")->required();
  vy->add_option("--trust", vf.trust, "Trust file (TOML)")->required();
  vy->add_flag("--json", vf.json, "Print the verified attestation as JSON");
  vy->add_option("--ca-file", vf.tls.ca_file, "wss://: trust these CAs (PEM)");
  vy->add_flag("--insecure-tls", vf.tls.insecure,
               "wss://: skip the TLS certificate check (the enclave is still verified)");

  // The platform: a control plane and a host agent on this machine.
  const std::string data_dir_help = "Data directory (default $ENCLAVIA_HOME, /var/lib/enclavia "
                                    "as root, else ~/.local/share/enclavia)";
  enclavia::cli::UpFlags up;
  CLI::App* upc = app.add_subcommand("up", "Start the control plane and a host agent on this machine");
  upc->add_flag("-d,--detach", up.detach, "Return once healthy instead of running until Ctrl-C");
  upc->add_option("--data-dir", up.data_dir, data_dir_help);
  upc->add_option("--public-host", up.public_host, "Address enclave relays listen on")
      ->default_val("127.0.0.1");
  upc->add_option("--provider", up.provider, "local (sandbox + NSM simulator) or nitro")
      ->default_val("local");

  enclavia::cli::DownFlags down;
  CLI::App* dn = app.add_subcommand("down", "Remove every enclave and stop the platform");
  dn->add_option("--data-dir", down.data_dir, data_dir_help);

  enclavia::cli::DeployFlags deploy;
  CLI::App* dp = app.add_subcommand("deploy", "Upload an image and run it as an enclave");
  dp->add_option("FILE", deploy.file, "The EIF (from enclavia build)")->required();
  dp->add_option("--name", deploy.name, "Enclave name (a-z, 0-9, -)")->required();
  dp->add_flag("--debug", deploy.debug, "Debug mode: console open, PCRs attest as zero");
  dp->add_option("--cpus", deploy.cpus, "vCPUs (default: the image's)");
  dp->add_option("--memory", deploy.memory_mib, "Memory in MiB (default: the image's)");
  dp->add_flag("--json", deploy.json, "Print the enclave as JSON");
  dp->add_option("--storage", deploy.storage,
                 "Attach an encrypted, rollback-proof volume of SIZE (e.g. 1G), mounted at the "
                 "image's [storage] path");
  dp->add_option("--backend", deploy.backend,
                 "Where the host keeps the volume: dir[:PATH] (default) or s3://BUCKET[/PREFIX]");
  dp->add_option("--witnesses", deploy.witnesses,
                 "Anti-rollback witness enclaves for the volume (default 1; 0 = none)");
  dp->add_option("--data-dir", deploy.data_dir, data_dir_help);
  // Upgrades (docs/upgrade.md): who may sign the enclave's upgrades, from its genesis on.
  dp->add_option("--control-key", deploy.control_key,
                 "Control key (FILE or pkcs11:URI) that signs the genesis and every upgrade");
  dp->add_option("--passphrase-file", deploy.passphrase_file,
                 "The control key's passphrase (or PIN) in the first line of this file");
  dp->add_flag("--managed-key", deploy.managed_key,
               "Let the control plane keep the control key (weaker: its operator can upgrade)");
  dp->add_flag("--immutable", deploy.immutable, "A genesis that accepts no upgrade, ever");
  dp->add_option("--staging-window", deploy.staging_window,
                 "Minimum time an upgrade stays staged in public before it may activate "
                 "(default 72h)");

  enclavia::cli::EnclaveFlags ef;
  enclavia::cli::StorageFlags storage;
  CLI::App* st = app.add_subcommand("storage", "Volumes: ls, inspect, snapshot, backup, recover, keygen");
  st->require_subcommand(1);
  st->add_option("--data-dir", storage.data_dir, data_dir_help);
  CLI::App* st_ls = st->add_subcommand("ls", "List the volumes and their state");
  st_ls->add_flag("--json", storage.json, "Print JSON");
  CLI::App* st_in = st->add_subcommand("inspect", "Show one volume (JSON)");
  st_in->add_option("NAME", storage.name, "Enclave name")->required();
  CLI::App* st_sn = st->add_subcommand("snapshot", "Copy a volume's objects aside (host side)");
  st_sn->add_option("NAME", storage.name, "Enclave name")->required();
  st_sn->add_option("--tag", storage.tag, "Snapshot name (a-z, 0-9, -)")->required();
  CLI::App* st_bk = st->add_subcommand("backup", "Copy a volume's objects to a directory or bucket");
  st_bk->add_option("NAME", storage.name, "Enclave name")->required();
  st_bk->add_option("--to", storage.to, "dir:/PATH or s3://BUCKET[/PREFIX]")->required();
  CLI::App* st_rc = st->add_subcommand(
      "recover", "Owner-signed recovery after every witness lost its state; restarts the enclave");
  st_rc->add_option("NAME", storage.name, "Enclave name")->required();
  st_rc->add_option("--key", storage.key, "The owner's Ed25519 key (PEM), from storage keygen")
      ->required();
  st_rc->add_option("--version", storage.version, "Stored version to accept (default: newest)");
  st_rc->add_flag("!--no-restart", storage.restart, "Only record the statement");
  CLI::App* st_kg = st->add_subcommand("keygen", "Make an owner key for [storage] recovery_key");
  st_kg->add_option("-o", storage.key, "Where to write the private key (PEM)")->required();

  CLI::App* ls = app.add_subcommand("ls", "List enclaves");
  ls->add_flag("--json", ef.json, "Print JSON");
  ls->add_option("--data-dir", ef.data_dir, data_dir_help);
  CLI::App* in = app.add_subcommand("inspect", "Show one enclave (JSON)");
  CLI::App* lg = app.add_subcommand("logs", "Print a debug enclave's console");
  lg->add_flag("-f,--follow", ef.follow, "Keep printing new output");
  CLI::App* rs = app.add_subcommand("restart", "Restart an enclave from the same image");
  CLI::App* rm = app.add_subcommand("rm", "Terminate and remove an enclave");
  CLI::App* tr = app.add_subcommand("trust", "Write a trust file for an enclave's PCRs");
  tr->add_option("-o,--output", ef.output, "Write here (default: stdout)");
  for (CLI::App* c : {in, lg, rs, rm, tr}) {
    c->add_option("NAME", ef.name, "Enclave name")->required();
    c->add_option("--data-dir", ef.data_dir, data_dir_help);
  }

  // Control keys (docs/control-keys.md): `enclavia keys new | show`.
  enclavia::cli::KeysNewFlags keys_new;
  enclavia::cli::KeysShowFlags keys_show;
  CLI::App* keys =
      app.add_subcommand("keys", "Control keys that sign an enclave's genesis and upgrades");
  keys->require_subcommand(1);
  CLI::App* keys_new_cmd = keys->add_subcommand("new", "Make a control key file (PEM, mode 0600)");
  keys_new_cmd->add_option("FILE", keys_new.file, "Where to write the key (never overwritten)")
      ->required();
  keys_new_cmd->add_option("--type", keys_new.type, "ed25519 or p256")->default_val("ed25519");
  keys_new_cmd->add_option("--passphrase-file", keys_new.passphrase_file,
                           "Encrypt the key with the first line of this file (else with "
                           "$ENCLAVIA_KEY_PASSPHRASE if set, else unencrypted)");
  keys_new_cmd->add_flag("--json", keys_new.json, "Print JSON");
  CLI::App* keys_show_cmd =
      keys->add_subcommand("show", "Print a control key's algorithm, fingerprint and SPKI");
  keys_show_cmd->add_option("KEY", keys_show.key, "A key file (PEM) or a pkcs11: URI")->required();
  keys_show_cmd->add_option("--passphrase-file", keys_show.passphrase_file,
                            "Passphrase (or token PIN) in the first line of this file");
  keys_show_cmd->add_flag("--json", keys_show.json, "Print JSON");

  // Upgrades (docs/upgrade.md): `enclavia upgrade stage | status | revoke | activate`, `chain`.
  enclavia::cli::UpgradeFlags upgrade;
  CLI::App* ug = app.add_subcommand("upgrade", "Stage, show, revoke and activate upgrades");
  ug->require_subcommand(1);
  ug->add_option("--data-dir", upgrade.data_dir, data_dir_help);
  CLI::App* ug_stage = ug->add_subcommand("stage", "Stage NEW.eif: public for a window, then due");
  ug_stage->add_option("NAME", upgrade.name, "The enclave")->required();
  ug_stage->add_option("--image", upgrade.image, "The new EIF")->required();
  ug_stage->add_option("--after", upgrade.after, "Not before now + DUR (default 72h)");
  ug_stage->add_option("--id", upgrade.id, "A name for the request (default u<time>)");
  CLI::App* ug_status = ug->add_subcommand("status", "Show the chain and staged upgrades (public)");
  ug_status->add_option("NAME", upgrade.name, "The enclave, or its URL")->required();
  CLI::App* ug_revoke = ug->add_subcommand("revoke", "Revoke a staged upgrade");
  ug_revoke->add_option("NAME", upgrade.name, "The enclave")->required();
  ug_revoke->add_option("ID", upgrade.id, "The request's id")->required();
  CLI::App* ug_activate = ug->add_subcommand("activate", "Activate a due upgrade now");
  ug_activate->add_option("NAME", upgrade.name, "The enclave")->required();
  ug_activate->add_option("ID", upgrade.id, "The request's id (default: the one staged)");
  ug_activate->add_flag("--force", upgrade.force,
                        "Skip the host's checks (the old enclave still decides)");
  for (CLI::App* c : {ug_stage, ug_revoke}) {
    c->add_option("--control-key", upgrade.control_key, "Control key FILE or pkcs11:URI");
    c->add_option("--passphrase-file", upgrade.passphrase_file, "Its passphrase or PIN");
    c->add_flag("--managed-key", upgrade.managed_key, "Sign with the control plane's key");
  }
  for (CLI::App* c : {ug_stage, ug_status, ug_revoke, ug_activate}) {
    c->add_flag("--json", upgrade.json, "Print JSON");
    c->add_option("--data-dir", upgrade.data_dir, data_dir_help);
  }
  enclavia::cli::ChainFlags chain;
  CLI::App* ch = app.add_subcommand("chain", "Print and verify an enclave's upgrade chain");
  ch->add_option("TARGET", chain.target, "An enclave name, or its URL (ws://HOST:PORT/)")
      ->required();
  ch->add_option("--trust", chain.trust, "Also decide as this trust file would (AcceptChain)");
  ch->add_option("--root", chain.roots, "PEM root (default: the local simulator's root)");
  ch->add_flag("--no-aws-root", chain.no_aws_root, "Do not trust the AWS Nitro root");
  ch->add_flag("--allow-debug", chain.allow_debug, "Accept receipts of debug-mode enclaves");
  ch->add_flag("--json", chain.json, "Print JSON");
  ch->add_option("--data-dir", chain.data_dir, data_dir_help);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (ug->parsed()) {
    if (ug_stage->parsed()) {
      return enclavia::cli::RunUpgradeStage(upgrade, std::cout, std::cerr);
    }
    if (ug_status->parsed()) {
      return enclavia::cli::RunUpgradeStatus(upgrade, std::cout, std::cerr);
    }
    if (ug_revoke->parsed()) {
      return enclavia::cli::RunUpgradeRevoke(upgrade, std::cout, std::cerr);
    }
    return enclavia::cli::RunUpgradeActivate(upgrade, std::cout, std::cerr);
  }
  if (ch->parsed()) {
    return enclavia::cli::RunChain(chain, std::cout, std::cerr);
  }
  if (keys->parsed()) {
    return keys_new_cmd->parsed() ? enclavia::cli::RunKeysNew(keys_new, std::cout, std::cerr)
                                  : enclavia::cli::RunKeysShow(keys_show, std::cout, std::cerr);
  }
  if (v->parsed()) {
    return enclavia::cli::RunAttestVerify(verify, std::cout, std::cerr);
  }
  if (s->parsed()) {
    return enclavia::cli::RunAttestSimulate(simulate, std::cout, std::cerr);
  }
  if (b->parsed()) {
    return enclavia::cli::RunBuild(build, std::cout, std::cerr);
  }
  if (d->parsed()) {
    return enclavia::cli::RunDescribe(describe, std::cout, std::cerr);
  }
  if (r->parsed()) {
    return enclavia::cli::RunReproduce(reproduce, std::cout, std::cerr);
  }
  if (px->parsed()) {
    return enclavia::cli::RunProxy(proxy, std::cout, std::cerr);
  }
  if (cn->parsed()) {
    return enclavia::cli::RunConnect(connect, std::cout, std::cerr);
  }
  if (vy->parsed()) {
    return enclavia::cli::RunVerify(vf, std::cout, std::cerr);
  }
  if (upc->parsed()) {
    return enclavia::cli::RunUp(up, std::cout, std::cerr);
  }
  if (dn->parsed()) {
    return enclavia::cli::RunDown(down, std::cout, std::cerr);
  }
  if (dp->parsed()) {
    return enclavia::cli::RunDeploy(deploy, std::cout, std::cerr);
  }
  if (st->parsed()) {
    std::ostream& out = std::cout;
    std::ostream& err = std::cerr;
    if (st_ls->parsed()) {
      return enclavia::cli::RunStorageList(storage, out, err);
    }
    if (st_in->parsed()) {
      return enclavia::cli::RunStorageInspect(storage, out, err);
    }
    if (st_sn->parsed()) {
      return enclavia::cli::RunStorageSnapshot(storage, out, err);
    }
    if (st_bk->parsed()) {
      return enclavia::cli::RunStorageBackup(storage, out, err);
    }
    if (st_rc->parsed()) {
      return enclavia::cli::RunStorageRecover(storage, out, err);
    }
    return enclavia::cli::RunStorageKeygen(storage, out, err);
  }
  if (ls->parsed()) {
    return enclavia::cli::RunList(ef, std::cout, std::cerr);
  }
  if (in->parsed()) {
    return enclavia::cli::RunInspect(ef, std::cout, std::cerr);
  }
  if (lg->parsed()) {
    return enclavia::cli::RunLogs(ef, std::cout, std::cerr);
  }
  if (rs->parsed()) {
    return enclavia::cli::RunRestart(ef, std::cout, std::cerr);
  }
  if (rm->parsed()) {
    return enclavia::cli::RunRemove(ef, std::cout, std::cerr);
  }
  if (tr->parsed()) {
    return enclavia::cli::RunTrust(ef, std::cout, std::cerr);
  }
  return 2;
}
