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
  // other status becomes ErrorForHttpResponse, a transport failure exits 1.
  CliResult<nlohmann::json> Call(std::string_view method, const std::string& target,
                                 const std::optional<nlohmann::json>& body = std::nullopt);
  CliResult<nlohmann::json> Get(const std::string& target) { return Call("GET", target); }

 private:
  std::unique_ptr<client::HttpClient> http_;
  std::string token_;
};

}  // namespace bifrost::cli
