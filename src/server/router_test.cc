#include <gtest/gtest.h>

#include <string>

#include "server/dispatch.h"
#include "server/http_types.h"
#include "server/request_target.h"

namespace bifrost::server {
namespace {

// A handler that answers with its name, so a test can see which route was chosen.
Handler Named(std::string name) {
  return [name](const HttpRequest&, const PathParams&, RequestLog&) {
    HttpResponse response;
    response.body = name;
    return response;
  };
}

std::string Call(const Router::Match& match) {
  HttpRequest request;
  RequestLog log;
  return (*match.handler)(request, match.params, log).body;
}

TEST(RouterTest, MatchesLiteralsAndExtractsParameters) {
  Router router;
  router.Add("GET", "/api/v1/orgs", Named("list"));
  router.Add("GET", "/api/v1/orgs/{org_id}/configs/{key}", Named("get"));

  const auto list = router.Find("GET", "/api/v1/orgs");
  ASSERT_NE(list.handler, nullptr);
  EXPECT_EQ(Call(list), "list");
  EXPECT_TRUE(list.params.empty());
  EXPECT_EQ(list.route_template, "/api/v1/orgs");
  EXPECT_EQ(list.status, 200);

  const auto get = router.Find("GET", "/api/v1/orgs/0b7e/configs/api_key");
  ASSERT_NE(get.handler, nullptr);
  EXPECT_EQ(Call(get), "get");
  EXPECT_EQ(get.params, (PathParams{{"org_id", "0b7e"}, {"key", "api_key"}}));
  EXPECT_EQ(get.route_template, "/api/v1/orgs/{org_id}/configs/{key}");
}

TEST(RouterTest, LiteralSegmentsWinOverParametersWhateverTheOrderOfRegistration) {
  Router router;
  router.Add("GET", "/a/{x}/c", Named("param-first"));
  router.Add("GET", "/a/b/{y}", Named("literal-first"));
  router.Add("GET", "/a/{x}/{y}", Named("two-params"));
  EXPECT_EQ(Call(router.Find("GET", "/a/b/c")), "literal-first");
  EXPECT_EQ(Call(router.Find("GET", "/a/z/c")), "param-first");
  EXPECT_EQ(Call(router.Find("GET", "/a/z/z")), "two-params");
  const auto match = router.Find("GET", "/a/b/q");
  EXPECT_EQ(match.params, (PathParams{{"y", "q"}}));
}

TEST(RouterTest, UnknownPathIs404AndOtherMethodIs405) {
  Router router;
  router.Add("GET", "/things/{id}", Named("get"));
  router.Add("DELETE", "/things/{id}", Named("delete"));

  const auto missing = router.Find("GET", "/nothing");
  EXPECT_EQ(missing.handler, nullptr);
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.route_template, "");

  const auto wrong_method = router.Find("PUT", "/things/1");
  EXPECT_EQ(wrong_method.handler, nullptr);
  EXPECT_EQ(wrong_method.status, 405);
  EXPECT_EQ(wrong_method.route_template, "");

  EXPECT_EQ(Call(router.Find("DELETE", "/things/1")), "delete");
  // Methods are case-sensitive (RFC 9110).
  EXPECT_EQ(router.Find("get", "/things/1").status, 405);
}

TEST(RouterTest, ParametersNeverMatchEmptySegmentsOrSlashes) {
  Router router;
  router.Add("GET", "/things/{id}", Named("get"));
  EXPECT_EQ(router.Find("GET", "/things/").status, 404);
  EXPECT_EQ(router.Find("GET", "/things").status, 404);
  EXPECT_EQ(router.Find("GET", "/things/a/b").status, 404);
  EXPECT_EQ(router.Find("GET", "/things//").status, 404);
  EXPECT_EQ(router.Find("GET", "//things/a").status, 404);
  EXPECT_EQ(router.Find("GET", "things/a").status, 404);
  EXPECT_EQ(router.Find("GET", "").status, 404);
  EXPECT_EQ(router.Find("GET", "/things/a/").status, 404);
}

TEST(RouterTest, RootRoute) {
  Router router;
  router.Add("GET", "/", Named("root"));
  EXPECT_EQ(Call(router.Find("GET", "/")), "root");
  EXPECT_EQ(router.Find("GET", "/x").status, 404);
}

TEST(RouterTest, RoutesListsEveryMethodAndTemplate) {
  Router router;
  router.Add("GET", "/a", Named("1"));
  router.Add("POST", "/a", Named("2"));
  router.Add("GET", "/a/{id}", Named("3"));
  const auto routes = router.Routes();
  ASSERT_EQ(routes.size(), 3u);
  EXPECT_EQ(routes[0], (std::pair<std::string, std::string>{"GET", "/a"}));
  EXPECT_EQ(routes[1], (std::pair<std::string, std::string>{"POST", "/a"}));
  EXPECT_EQ(routes[2], (std::pair<std::string, std::string>{"GET", "/a/{id}"}));
}

TEST(RouterDeathTest, ConflictingRoutesAreAProgrammingError) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        Router router;
        router.Add("GET", "/a/{x}", Named("1"));
        router.Add("GET", "/a/{y}", Named("2"));
      },
      "registered twice");
  EXPECT_DEATH({ Router().Add("GET", "a/b", Named("1")); }, "starts with '/'");
  EXPECT_DEATH({ Router().Add("GET", "/a/x{y}", Named("1")); }, "whole segment");
  EXPECT_DEATH({ Router().Add("GET", "/a//b", Named("1")); }, "empty path segment");
}

TEST(HttpRequestTest, HeaderLooksUpLowerCaseNames) {
  HttpRequest request;
  request.headers = {{"authorization", "Bearer x"}, {"content-type", "application/json"}};
  EXPECT_EQ(request.Header("authorization"), "Bearer x");
  EXPECT_EQ(request.Header("content-type"), "application/json");
  EXPECT_EQ(request.Header("x-missing"), "");
}

TEST(RequestTargetTest, DecodesThePathAndTheQuery) {
  const auto target = ParseRequestTarget("/a%20b/%C3%A9t%c3%a9?x=1&y=hello+world%21&x=2&flag&&z=");
  ASSERT_TRUE(target) << target.error().ToString();
  EXPECT_EQ(target->path, "/a b/\xC3\xA9t\xC3\xA9");
  EXPECT_EQ(target->query, (std::map<std::string, std::string>{
                               {"x", "2"}, {"y", "hello world!"}, {"flag", ""}, {"z", ""}}));
}

TEST(RequestTargetTest, PlusIsASpaceOnlyInTheQuery) {
  const auto target = ParseRequestTarget("/a+b?q=a+b%2Bc");
  ASSERT_TRUE(target);
  EXPECT_EQ(target->path, "/a+b");
  EXPECT_EQ(target->query.at("q"), "a b+c");
}

TEST(RequestTargetTest, RefusesWhatCannotBeRoutedUnambiguously) {
  for (const char* bad :
       {"", "x", "http://example.com/a", "/a%2Fb", "/a%2fb", "/a%", "/a%4", "/a%zz", "/a%00b",
        "/a%0Ab", "/a#frag", "/a?x=%", "/a?x=%0A", "/a?%00=1"}) {
    EXPECT_FALSE(ParseRequestTarget(bad)) << bad;
  }
  // An encoded slash in the query is just a character.
  const auto query_slash = ParseRequestTarget("/a?next=%2Fb");
  ASSERT_TRUE(query_slash);
  EXPECT_EQ(query_slash->query.at("next"), "/b");
}

TEST(PercentDecodeTest, Strict) {
  EXPECT_EQ(PercentDecode("%41%62c", false), "Abc");
  EXPECT_EQ(PercentDecode("a+b", false), "a+b");
  EXPECT_EQ(PercentDecode("a+b", true), "a b");
  EXPECT_EQ(PercentDecode("%", false), std::nullopt);
  EXPECT_EQ(PercentDecode("%g0", false), std::nullopt);
  EXPECT_EQ(PercentDecode("%0", false), std::nullopt);
}

TEST(DispatchTest, RoutesToTheHandlerWithItsParameters) {
  Router router;
  router.Add("GET", "/things/{id}",
             [](const HttpRequest&, const PathParams& params, RequestLog& log) {
               log.token_id = "tok";
               HttpResponse response;
               response.body = params.at("id");
               return response;
             });
  const Dispatcher dispatch = MakeRouterDispatcher(router);
  HttpRequest request;
  request.method = "GET";
  request.path = "/things/42";
  RequestLog log;
  const HttpResponse response = dispatch(request, log);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "42");
  EXPECT_EQ(log.token_id, "tok");
  EXPECT_EQ(MakeRouteNamer(router)(request), "/things/{id}");
}

TEST(DispatchTest, NoRouteIs404AndAWrongMethodIs405WithAllow) {
  Router router;
  router.Add("GET", "/things/{id}", Named("get"));
  router.Add("DELETE", "/things/{id}", Named("delete"));
  const Dispatcher dispatch = MakeRouterDispatcher(router);
  const RouteNamer namer = MakeRouteNamer(router);
  RequestLog log;

  HttpRequest missing;
  missing.method = "GET";
  missing.path = "/nope";
  const HttpResponse not_found = dispatch(missing, log);
  EXPECT_EQ(not_found.status, 404);
  EXPECT_NE(not_found.body.find("\"code\":\"not_found\""), std::string::npos) << not_found.body;
  EXPECT_EQ(namer(missing), "");

  HttpRequest wrong;
  wrong.method = "PUT";
  wrong.path = "/things/1";
  const HttpResponse not_allowed = dispatch(wrong, log);
  EXPECT_EQ(not_allowed.status, 405);
  EXPECT_NE(not_allowed.body.find("\"code\":\"method_not_allowed\""), std::string::npos);
  ASSERT_EQ(not_allowed.headers.size(), 1u);
  EXPECT_EQ(not_allowed.headers[0].first, "Allow");
  EXPECT_EQ(not_allowed.headers[0].second, "GET, DELETE");
}

}  // namespace
}  // namespace bifrost::server
