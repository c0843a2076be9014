// Always-on invariant checks (STYLE.md point 6). A failed check is a
// programmer error: print where and why, then abort.
//
//   QKV_CHECK(next > match) << "progress of " << id << " is inconsistent";
#pragma once

#include <sstream>

namespace qkv::internal {

class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* expr);
  [[noreturn]] ~CheckFailure();
  template <typename T>
  CheckFailure& operator<<(const T& v) {
    stream_ << v;
    return *this;
  }

 private:
  std::ostringstream stream_;
};

// Makes `cond ? (void)0 : Voidify() & CheckFailure(...) << ...` typecheck.
struct Voidify {
  void operator&(const CheckFailure&) {}
};

}  // namespace qkv::internal

#define QKV_CHECK(cond)                       \
  (cond) ? (void)0                            \
         : ::qkv::internal::Voidify() &       \
               ::qkv::internal::CheckFailure(__FILE__, __LINE__, #cond)

#define QKV_CHECK_EQ(a, b) QKV_CHECK((a) == (b)) << "(" << (a) << " vs " << (b) << ") "
#define QKV_CHECK_LE(a, b) QKV_CHECK((a) <= (b)) << "(" << (a) << " vs " << (b) << ") "
#define QKV_CHECK_LT(a, b) QKV_CHECK((a) < (b)) << "(" << (a) << " vs " << (b) << ") "
#define QKV_CHECK_GE(a, b) QKV_CHECK((a) >= (b)) << "(" << (a) << " vs " << (b) << ") "
#define QKV_FATAL() ::qkv::internal::CheckFailure(__FILE__, __LINE__, "FATAL")
