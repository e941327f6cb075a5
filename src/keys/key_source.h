// Where the master keys come from: the operator's environment or files.
//
// BIFROST_SECRET_KEY (or BIFROST_SECRET_KEY_FILE) is the current key: it seals (wraps) new
// data keys. BIFROST_SECRET_KEY_PREVIOUS (or BIFROST_SECRET_KEY_PREVIOUS_FILE) lists older
// keys, one per line, that only unwrap: what a master-key rotation needs while data keys
// are still wrapped by an old key. Every variable is removed from the environment once read
// (and its bytes overwritten first), so no child process inherits it and /proc/self/environ
// no longer shows it; key text lives only in wiped buffers.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "crypto/keyring.h"
#include "crypto/secure_buffer.h"

namespace bifrost::keys {

inline constexpr const char* kSecretKeyEnv = "BIFROST_SECRET_KEY";
inline constexpr const char* kSecretKeyFileEnv = "BIFROST_SECRET_KEY_FILE";
inline constexpr const char* kPreviousKeyEnv = "BIFROST_SECRET_KEY_PREVIOUS";
inline constexpr const char* kPreviousKeyFileEnv = "BIFROST_SECRET_KEY_PREVIOUS_FILE";

// A secret, and the name messages use for where it came from ("BIFROST_SECRET_KEY",
// "BIFROST_SECRET_KEY_PREVIOUS line 2", "the development key file '...'").
struct Secret {
  crypto::SecureBuffer text;
  std::string source;
};

struct EnvironmentKeys {
  std::optional<Secret> current;  // nullopt when neither variable is set (or both empty)
  std::vector<Secret> previous;   // in the order given; blank lines are skipped
};

// Takes all four variables out of the environment, whatever happens (also on error).
// Errors: both a variable and its _FILE form set; an unreadable or oversized file;
// previous keys without a current key.
Result<EnvironmentKeys> TakeKeysFromEnvironment();

// Reads a key file into wiped memory (at most 64 KiB), dropping one trailing newline.
// Warns on stderr when group or others may read it. `what` names it in messages.
Result<crypto::SecureBuffer> ReadKeyFile(const std::string& path, std::string_view what);

// The keyring: the master key derived from `current` as primary, then one per previous
// key. A previous key equal to the current one, or given twice, is refused.
Result<crypto::Keyring> BuildKeyring(const Secret& current, const std::vector<Secret>& previous);

// "BIFROST_SECRET_KEY is not set (or set BIFROST_SECRET_KEY_FILE to a file holding it)".
std::string_view MissingKeyMessage();

}  // namespace bifrost::keys
