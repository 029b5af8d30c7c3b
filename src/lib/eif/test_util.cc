// SPDX-License-Identifier: Apache-2.0
#include "lib/eif/test_util.h"

#include <zlib.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "lib/crypto/x509.h"

namespace enclavia::eif::testing {

TempDir::TempDir() {
  std::string templ = (std::filesystem::temp_directory_path() / "eif_test_XXXXXX").string();
  ENCLAVIA_CHECK(::mkdtemp(templ.data()) != nullptr);
  path_ = templ;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::vector<std::string> TempDir::Entries() const {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(path_)) {
    out.push_back(e.path().filename().string());
  }
  return out;
}

Bytes Random(size_t n, uint64_t seed) {
  Bytes out(n);
  uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[i] = static_cast<uint8_t>(x >> 24);
  }
  return out;
}

IdentityInfo SampleIdentity() {
  IdentityInfo id;
  id.image_name = "hello";
  id.image_version = "1.0";
  id.build_time = "1970-01-01T00:00:00+00:00";
  id.build_tool = "enclavia";
  id.build_tool_version = "0.1.0";
  id.operating_system = "Linux";
  id.kernel_version = "6.1.0";
  id.docker_info_json = R"({"b":1,"a":[true,null]})";
  id.custom_metadata_json = R"({"Enclavia":{"Port":8080}})";
  return id;
}

ImageSpec TestImage::Spec(const SigningKey* signer) {
  sources_.clear();
  sources_.reserve(ramdisks.size() + 1);
  sources_.emplace_back(kernel);
  for (const Bytes& r : ramdisks) {
    sources_.emplace_back(r);
  }
  metadata_ = EncodeMetadata(identity);
  ImageSpec spec;
  spec.kernel = &sources_[0];
  spec.cmdline = cmdline;
  spec.metadata = metadata_;
  for (size_t i = 1; i < sources_.size(); ++i) {
    spec.ramdisks.push_back(&sources_[i]);
  }
  spec.signer = signer;
  return spec;
}

SigningKey MakeSigner(crypto::SignatureAlgorithm alg, const std::string& common_name) {
  crypto::PrivateKey key = crypto::PrivateKey::Generate(alg);
  crypto::CertificateSpec spec;
  spec.subject = {{"C", "US"}, {"O", "Enclavia Test"}, {"CN", common_name}};
  spec.not_before = SystemTime(std::chrono::seconds(1700000000));
  spec.not_after = SystemTime(std::chrono::seconds(2000000000));
  auto cert = crypto::IssueCertificate(spec, key.public_key(), key, nullptr);
  ENCLAVIA_CHECK(cert.has_value());
  return SigningKey{cert->ToPem(), std::move(key)};
}

Bytes ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  ENCLAVIA_CHECK(in.good());
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void WriteAll(const std::string& path, ByteSpan data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  ENCLAVIA_CHECK(out.good());
}

void Put64(Bytes& b, size_t offset, uint64_t v) {
  for (size_t i = 0; i < 8; ++i) {
    b[offset + i] = static_cast<uint8_t>(v >> (56 - 8 * i));
  }
}

void Put16(Bytes& b, size_t offset, uint16_t v) {
  b[offset] = static_cast<uint8_t>(v >> 8);
  b[offset + 1] = static_cast<uint8_t>(v);
}

void FixCrc(Bytes& image) {
  uLong crc = crc32(0, image.data(), 544);
  crc = crc32(crc, image.data() + 548, static_cast<uInt>(image.size() - 548));
  for (size_t i = 0; i < 4; ++i) {
    image[544 + i] = static_cast<uint8_t>(crc >> (24 - 8 * i));
  }
}

Bytes BuildRaw(const std::vector<RawSection>& sections, uint16_t version) {
  Bytes image(548, 0);
  image[0] = '.';
  image[1] = 'e';
  image[2] = 'i';
  image[3] = 'f';
  Put16(image, 4, version);
  Put64(image, 8, 1 << 30);
  Put64(image, 16, 2);
  Put16(image, kNumSectionsOffset, static_cast<uint16_t>(sections.size()));
  for (size_t i = 0; i < sections.size(); ++i) {
    if (i < 32) {
      Put64(image, kOffsetsOffset + 8 * i, image.size());
      Put64(image, kSizesOffset + 8 * i, sections[i].data.size());
    }
    Bytes header(12, 0);
    Put16(header, 0, sections[i].type);
    Put64(header, 4, sections[i].data.size());
    image.insert(image.end(), header.begin(), header.end());
    image.insert(image.end(), sections[i].data.begin(), sections[i].data.end());
  }
  FixCrc(image);
  return image;
}

}  // namespace enclavia::eif::testing
