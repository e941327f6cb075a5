// The OpenAPI 3 document of the REST API (docs/openapi.json, compiled in).
#pragma once

#include <string_view>

namespace bifrost::server {

std::string_view OpenApiDocument();

}  // namespace bifrost::server
