// SPDX-License-Identifier: Apache-2.0
#include "lib/eif/internal/pipeline.h"

#include <array>
#include <atomic>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lib/eif/test_util.h"

namespace enclavia::eif::internal {
namespace {

using ::testing::HasSubstr;

// Recorder keeps what it receives, per stream.
class Recorder final : public Consumer {
 public:
  explicit Recorder(std::vector<Stream> wants, int fail_at = -1)
      : wants_(std::move(wants)), fail_at_(fail_at) {}
  bool Wants(Stream stream) const override {
    return std::find(wants_.begin(), wants_.end(), stream) != wants_.end();
  }
  Result<void> Consume(ByteSpan data, Stream stream) override {
    EXPECT_TRUE(Wants(stream));
    EXPECT_FALSE(data.empty());
    if (calls_++ == fail_at_) {
      return Error(Code::kIo, "consumer failed");
    }
    Bytes& out = got_[static_cast<size_t>(stream)];
    out.insert(out.end(), data.begin(), data.end());
    return Ok();
  }
  const Bytes& got(Stream s) const { return got_[static_cast<size_t>(s)]; }

 private:
  std::vector<Stream> wants_;
  int fail_at_;
  int calls_ = 0;
  std::array<Bytes, 3> got_;
};

class PipelineTest : public ::testing::TestWithParam<bool> {};

TEST_P(PipelineTest, EveryConsumerSeesItsStreamsInOrder) {
  Recorder all({Stream::kBoot, Stream::kApp, Stream::kUnmeasured});
  Recorder measured({Stream::kBoot, Stream::kApp});
  Recorder app({Stream::kApp});
  PipelineOptions options;
  options.threaded = GetParam();
  options.chunk_size = 7;
  options.depth = 3;
  std::array<Bytes, 3> expected;
  {
    Pipeline p({&all, &measured, &app}, options);
    ASSERT_TRUE(p.Start());
    for (uint64_t round = 0; round < 50; ++round) {
      const Bytes small = testing::Random(round % 9, round);
      const Bytes big = testing::Random(21 + round, round + 100);  // >= depth * chunk: in place.
      const auto s = static_cast<Stream>(round % 3);
      ASSERT_TRUE(p.Write(small, s));
      ASSERT_TRUE(p.Write(big, Stream::kApp));
      const Bytes filled = testing::Random(round * 3, round + 200);
      ASSERT_TRUE(p.Fill(filled.size(), Stream::kBoot,
                         [&](uint64_t offset, std::span<uint8_t> out) -> Result<void> {
                           EXPECT_LE(out.size(), 7u);
                           std::copy_n(filled.begin() + static_cast<ptrdiff_t>(offset), out.size(),
                                       out.begin());
                           return Ok();
                         }));
      auto append = [&](Stream st, const Bytes& b) {
        Bytes& e = expected[static_cast<size_t>(st)];
        e.insert(e.end(), b.begin(), b.end());
      };
      append(s, small);
      append(Stream::kApp, big);
      append(Stream::kBoot, filled);
    }
    ASSERT_TRUE(p.Finish());
  }
  for (Stream s : {Stream::kBoot, Stream::kApp, Stream::kUnmeasured}) {
    EXPECT_EQ(all.got(s), expected[static_cast<size_t>(s)]);
  }
  EXPECT_EQ(measured.got(Stream::kBoot), expected[0]);
  EXPECT_EQ(measured.got(Stream::kApp), expected[1]);
  EXPECT_TRUE(measured.got(Stream::kUnmeasured).empty());
  EXPECT_EQ(app.got(Stream::kApp), expected[1]);
  EXPECT_TRUE(app.got(Stream::kBoot).empty());
}

TEST_P(PipelineTest, AConsumerErrorStopsTheProducer) {
  Recorder ok({Stream::kBoot});
  Recorder failing({Stream::kBoot}, 3);
  PipelineOptions options;
  options.threaded = GetParam();
  options.chunk_size = 4;
  options.depth = 2;
  Pipeline p({&ok, &failing}, options);
  ASSERT_TRUE(p.Start());
  Result<void> r = Ok();
  for (int i = 0; i < 1000 && r; ++i) {
    r = p.Write(testing::Random(i % 2 == 0 ? 5 : 40, static_cast<uint64_t>(i)), Stream::kBoot);
  }
  auto finished = p.Finish();
  ASSERT_FALSE(finished);
  EXPECT_THAT(finished.error().message(), HasSubstr("consumer failed"));
  if (!r) {
    EXPECT_THAT(r.error().message(), HasSubstr("consumer failed"));
  }
}

TEST_P(PipelineTest, FillErrorsComeBackAndFinishStillJoins) {
  Recorder ok({Stream::kBoot});
  PipelineOptions options;
  options.threaded = GetParam();
  options.chunk_size = 4;
  Pipeline p({&ok}, options);
  ASSERT_TRUE(p.Start());
  auto r = p.Fill(100, Stream::kBoot, [](uint64_t offset, std::span<uint8_t>) -> Result<void> {
    if (offset >= 8) {
      return Error(Code::kIo, "read failed");
    }
    return Ok();
  });
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message(), HasSubstr("read failed"));
  EXPECT_TRUE(p.Finish());  // The consumers themselves were fine.
  EXPECT_EQ(ok.got(Stream::kBoot).size(), 8u);
}

INSTANTIATE_TEST_SUITE_P(Modes, PipelineTest, ::testing::Bool(), [](const auto& param_info) {
  return param_info.param ? "Threaded" : "Inline";
});

}  // namespace
}  // namespace enclavia::eif::internal
