#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/http_types.h"

namespace bifrost::server {
namespace {

// Splits "/a/b/c" into {"a", "b", "c"}; "/" into {""}; "/a/" into {"a", ""}. The caller has
// checked the leading '/'. Empty segments are kept so that "/a//b" and "/a/" match nothing.
std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> segments;
  path.remove_prefix(1);
  while (true) {
    const std::size_t slash = path.find('/');
    segments.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return segments;
}

bool IsParam(std::string_view segment) {
  return segment.size() >= 3 && segment.front() == '{' && segment.back() == '}';
}

// A route definition that can never match is a programming error, found at start-up.
[[noreturn]] void BadRoute(std::string_view method, std::string_view path_template,
                           std::string_view why) {
  std::fprintf(stderr, "bifrost: internal error: route %.*s %.*s: %.*s\n",
               static_cast<int>(method.size()), method.data(),
               static_cast<int>(path_template.size()), path_template.data(),
               static_cast<int>(why.size()), why.data());
  std::abort();
}

}  // namespace

std::string_view HttpRequest::Header(std::string_view lower_name) const {
  const auto it = headers.find(std::string(lower_name));
  return it == headers.end() ? std::string_view() : std::string_view(it->second);
}

void Router::Add(std::string method, std::string path_template, Handler handler) {
  if (method.empty()) BadRoute(method, path_template, "empty method");
  if (path_template.empty() || path_template.front() != '/') {
    BadRoute(method, path_template, "a template starts with '/'");
  }
  if (!handler) BadRoute(method, path_template, "no handler");
  Route route;
  // "/" is the one template with an empty segment.
  const std::vector<std::string_view> template_segments =
      path_template == "/" ? std::vector<std::string_view>{} : SplitPath(path_template);
  if (path_template == "/") route.segments = {""};
  for (std::string_view segment : template_segments) {
    if (segment.empty()) BadRoute(method, path_template, "empty path segment");
    const bool has_brace = segment.find_first_of("{}") != std::string_view::npos;
    if (has_brace && !IsParam(segment)) {
      BadRoute(method, path_template, "a parameter is a whole segment \"{name}\"");
    }
    if (IsParam(segment)) {
      const std::string_view name = segment.substr(1, segment.size() - 2);
      if (name.find_first_of("{}") != std::string_view::npos) {
        BadRoute(method, path_template, "bad parameter name");
      }
      for (const auto& previous : route.segments) {
        if (previous == segment) BadRoute(method, path_template, "duplicate parameter");
      }
    }
    route.segments.emplace_back(segment);
  }
  // Two templates that differ only in parameter names would match the same paths.
  const auto same_paths = [](const std::vector<std::string>& a, const std::vector<std::string>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (IsParam(a[i]) != IsParam(b[i])) return false;
      if (!IsParam(a[i]) && a[i] != b[i]) return false;
    }
    return true;
  };
  for (const auto& existing : routes_) {
    if (existing.method == method && same_paths(existing.segments, route.segments)) {
      BadRoute(method, path_template, "registered twice");
    }
  }
  route.method = std::move(method);
  route.path_template = std::move(path_template);
  route.handler = std::move(handler);
  routes_.push_back(std::move(route));
}

Router::Match Router::Find(std::string_view method, std::string_view path) const {
  Match result;
  result.status = 404;
  if (path.empty() || path.front() != '/') return result;
  const std::vector<std::string_view> segments = SplitPath(path);

  const Route* best = nullptr;
  // Literal segments win over parameters: among the matching routes, the one whose first
  // differing segment is a literal. Comparing the literal/parameter pattern as a sequence of
  // flags does exactly that.
  std::vector<bool> best_shape;
  bool path_matched = false;
  for (const auto& route : routes_) {
    if (route.segments.size() != segments.size()) continue;
    std::vector<bool> shape(segments.size());
    bool matches = true;
    for (std::size_t i = 0; i < segments.size() && matches; ++i) {
      const std::string& pattern = route.segments[i];
      if (IsParam(pattern)) {
        matches = !segments[i].empty();
        shape[i] = false;
      } else {
        matches = pattern == segments[i];
        shape[i] = true;
      }
    }
    if (!matches) continue;
    path_matched = true;
    if (route.method != method) continue;
    if (best == nullptr || shape > best_shape) {
      best = &route;
      best_shape = std::move(shape);
    }
  }
  if (best == nullptr) {
    result.status = path_matched ? 405 : 404;
    return result;
  }
  for (std::size_t i = 0; i < segments.size(); ++i) {
    const std::string& pattern = best->segments[i];
    if (IsParam(pattern)) {
      result.params.emplace(pattern.substr(1, pattern.size() - 2), std::string(segments[i]));
    }
  }
  result.handler = &best->handler;
  result.route_template = best->path_template;
  result.status = 200;
  return result;
}

std::vector<std::pair<std::string, std::string>> Router::Routes() const {
  std::vector<std::pair<std::string, std::string>> routes;
  routes.reserve(routes_.size());
  for (const auto& route : routes_) routes.emplace_back(route.method, route.path_template);
  return routes;
}

}  // namespace bifrost::server
