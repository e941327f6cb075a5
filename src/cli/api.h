// The REST API as the CLI uses it: JSON in, JSON out, errors already turned into CliErrors.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "cli/cli_error.h"
#include "client/http_client.h"

namespace bifrost::cli {

class Api {
 public:
  Api(std::unique_ptr<client::HttpClient> http, std::string token);

  // Sends one request with the token; a 2xx body is parsed (null for an empty body), any
  // other status becomes ErrorForHttpResponse, a transport failure exits 1. `body` must hold
  // only valid UTF-8 (commands check their arguments first); if not, it is a usage error.
  CliResult<nlohmann::json> Call(std::string_view method, const std::string& target,
                                 const std::optional<nlohmann::json>& body = std::nullopt);
  CliResult<nlohmann::json> Get(const std::string& target) { return Call("GET", target); }

  // Call with the request body given as JSON text and the 2xx answer returned as text,
  // checked to be JSON ("" for an empty body). For config entries, whose json values must
  // reach the user exactly as stored: parsing them would turn big integers into doubles.
  CliResult<std::string> CallText(std::string_view method, const std::string& target,
                                  std::optional<std::string_view> body_text = std::nullopt);

 private:
  std::unique_ptr<client::HttpClient> http_;
  std::string token_;
};

}  // namespace bifrost::cli
