#include "crypto/secure_buffer.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <new>

// This test binary replaces the global allocation functions so it can look at a block at
// the moment it is freed: that is the only way to check that freed memory was wiped
// without reading freed memory.
namespace {
const void* g_watched = nullptr;
std::size_t g_watched_size = 0;
int g_watched_wiped = -1;  // -1: not freed yet, 0: freed dirty, 1: freed wiped
}  // namespace

void* operator new(std::size_t n) {
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
namespace {
void Release(void* p) noexcept {
  if (p != nullptr && p == g_watched) {
    const auto* bytes = static_cast<const unsigned char*>(p);
    g_watched_wiped = 1;
    for (std::size_t i = 0; i < g_watched_size; ++i) {
      if (bytes[i] != 0) g_watched_wiped = 0;
    }
    g_watched = nullptr;
  }
  std::free(p);
}
}  // namespace
void operator delete(void* p) noexcept { Release(p); }
void operator delete(void* p, std::size_t) noexcept { Release(p); }

namespace bifrost::crypto {
namespace {

void Watch(const void* p, std::size_t n) {
  g_watched = p;
  g_watched_size = n;
  g_watched_wiped = -1;
}

TEST(SecureBuffer, DestructionWipesTheBlock) {
  {
    SecureBuffer b = SecureBuffer::From("sk_live_canary_destruction");
    Watch(b.data(), b.size());
  }
  EXPECT_EQ(g_watched_wiped, 1);
}

TEST(SecureBuffer, GrowthWipesTheOldBlock) {
  SecureBuffer b = SecureBuffer::From("sk_live_canary_growth");
  Watch(b.data(), b.size());
  b.Append(std::string(4096, 'x'));  // forces a reallocation
  EXPECT_EQ(g_watched_wiped, 1);
}

TEST(SecureBuffer, MoveAssignmentWipesTheOverwrittenBlock) {
  SecureBuffer a = SecureBuffer::From("sk_live_canary_overwritten");
  Watch(a.data(), a.size());
  a = SecureBuffer::From("other");
  EXPECT_EQ(g_watched_wiped, 1);
  EXPECT_EQ(a.view(), "other");
}

TEST(SecureBuffer, ControlAPlainVectorIsNotWiped) {
  // Proves the probe can see a dirty block: the wiping above is the buffer's doing.
  auto* v = new std::vector<char>(32, 'Z');
  Watch(v->data(), v->size());
  delete v;
  EXPECT_EQ(g_watched_wiped, 0);
}

TEST(SecureWipe, ZeroesMemory) {
  char buf[32];
  std::memset(buf, 'A', sizeof(buf));
  SecureWipe(buf, sizeof(buf));
  for (char c : buf) EXPECT_EQ(c, 0);
}

TEST(SecureBuffer, BasicOperations) {
  SecureBuffer b = SecureBuffer::From("hello");
  EXPECT_EQ(b.view(), "hello");
  b.Append(" world");
  EXPECT_EQ(b.view(), "hello world");
  b.Resize(5);
  EXPECT_EQ(b.view(), "hello");
  EXPECT_TRUE(b.Equals("hello"));
  EXPECT_FALSE(b.Equals("hellO"));
  EXPECT_FALSE(b.Equals("hell"));
  SecureBuffer c = b.Clone();
  EXPECT_EQ(c.view(), "hello");
  SecureBuffer moved = std::move(b);
  EXPECT_EQ(moved.view(), "hello");
  moved.Clear();
  EXPECT_TRUE(moved.empty());
  EXPECT_EQ(SecureBuffer(4).view(), std::string_view("\0\0\0\0", 4));
}

TEST(SecureBuffer, ShrinkWipesTheCutOffTail) {
  SecureBuffer b = SecureBuffer::From("secretsecret");
  const std::uint8_t* p = b.data();
  b.Resize(3);
  // Resize never reallocates when shrinking, so the tail is still ours to inspect.
  ASSERT_EQ(b.data(), p);
  for (std::size_t i = 3; i < 12; ++i) EXPECT_EQ(p[i], 0) << i;
}

static_assert(!std::is_copy_constructible_v<SecureBuffer>);
static_assert(!std::is_convertible_v<SecureBuffer, std::string>);

}  // namespace
}  // namespace bifrost::crypto
