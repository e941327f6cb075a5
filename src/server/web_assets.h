// The web UI's files (web/ in the repository), compiled into the binary at build time, so
// that `bifrost serve` alone serves the UI (docs/web-ui.md).
#pragma once

#include <string_view>
#include <vector>

namespace bifrost::server {

struct WebAsset {
  std::string_view name;  // file name in web/, e.g. "app.js"
  std::string_view data;
};

// Every file of web/, by name.
const std::vector<WebAsset>& WebAssets();

}  // namespace bifrost::server
