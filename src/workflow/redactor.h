// Redaction of secret values from what an execution printed, returned or raised
// (docs/workflows.md, "Redaction"). The runtime adds every secret value revealed to (or
// written by) an execution; before its logs, result and error are stored or returned, each
// occurrence is replaced by "[REDACTED]".
//
// Forms matched, for each secret: the raw bytes; the JSON-escaped form (\" \\ \b \f \n \r
// \t and \u00XX for other control characters, the rest as is); the ASCII-only JSON form
// that Python's json.dumps emits by default (every non-ASCII character as \uXXXX with
// lower-case hex, surrogate pairs above U+FFFF); and Python's repr() escaping of a str
// (\\, \', \n, \r, \t, \xXX for other control characters); and the two JSON forms escaped
// once more (JSON text inside a JSON string: a workflow returning json.dumps(...)). Values shorter
// than 4 characters (Unicode code points) are not redacted: replacing "1" or "yes" everywhere would
// destroy the output and hide nothing.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/secure_buffer.h"

namespace bifrost::workflow {

inline constexpr std::string_view kRedacted = "[REDACTED]";

class Redactor {
 public:
  Redactor() = default;
  Redactor(const Redactor&) = delete;
  Redactor& operator=(const Redactor&) = delete;

  // Remembers `secret` (and its escaped forms), in wiped memory. Duplicates are ignored.
  void Add(std::string_view secret);
  // How many distinct secrets are held.
  std::size_t size() const;

  // `text` with every occurrence of every form of every secret replaced by kRedacted,
  // longest match first, scanning left to right (no re-scanning of replaced text).
  // `cut_at_end`: the text was cut short, so a secret may have been cut too: a trailing
  // piece that is a prefix of some form (of any length >= 1) is replaced by kRedacted as well.
  std::string Apply(std::string_view text, bool cut_at_end = false) const;

  // A JSON document with secrets redacted; still a JSON document. The text is redacted as
  // text; if the result no longer parses as JSON (a secret matched inside a number or
  // across tokens), the whole redacted text is returned as one JSON string instead.
  std::string ApplyToJson(std::string_view json_text) const;

 private:
  mutable std::mutex mu_;
  std::vector<crypto::SecureBuffer> forms_;  // every form of every secret, distinct
  std::vector<crypto::SecureBuffer> secrets_;
};

}  // namespace bifrost::workflow
