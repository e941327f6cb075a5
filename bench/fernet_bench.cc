// Fernet encrypt and decrypt of a 32-byte secret on one thread. Compared with Python's
// `cryptography` Fernet on the same input by bench/run.sh; results in docs/benchmarks.md.
#include <benchmark/benchmark.h>

#include <array>
#include <cstdlib>

#include "crypto/fernet.h"
#include "crypto/fernet_testing.h"
#include "crypto/random.h"

namespace {

using bifrost::crypto::FernetKey;

constexpr std::int64_t kNow = 1'750'000'000;
// 32 bytes, the size of a typical API key.
constexpr std::string_view kSecret = "sk_live_0123456789abcdefghijklmn";
static_assert(kSecret.size() == 32);

FernetKey BenchKey() {
  auto key = FernetKey::FromBase64("cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=");
  if (!key) std::abort();
  return *key;
}

void BM_FernetEncrypt32(benchmark::State& state) {
  const FernetKey key = BenchKey();
  for (auto _ : state) {
    auto token = key.Encrypt(kSecret, kNow);
    benchmark::DoNotOptimize(token);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FernetEncrypt32);

void BM_FernetDecrypt32(benchmark::State& state) {
  const FernetKey key = BenchKey();
  auto token = key.Encrypt(kSecret, kNow);
  if (!token) std::abort();
  for (auto _ : state) {
    auto plaintext = key.Decrypt(*token, {.now_seconds = kNow});
    benchmark::DoNotOptimize(plaintext);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FernetDecrypt32);

// The parts of an encryption, to see where its time goes.
void BM_FernetEncrypt32FixedIv(benchmark::State& state) {
  const FernetKey key = BenchKey();
  const std::array<std::uint8_t, bifrost::crypto::kFernetIvSize> iv{};
  for (auto _ : state) {
    auto token = bifrost::crypto::EncryptWithFixedIvForTesting(key, kSecret, kNow, iv);
    benchmark::DoNotOptimize(token);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FernetEncrypt32FixedIv);

void BM_RandomIv(benchmark::State& state) {
  std::array<std::uint8_t, bifrost::crypto::kFernetIvSize> iv{};
  for (auto _ : state) {
    if (!bifrost::crypto::RandomBytes(iv)) std::abort();
    benchmark::DoNotOptimize(iv);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RandomIv);

}  // namespace

BENCHMARK_MAIN();
