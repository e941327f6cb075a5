// The process protocol with its standard streams given, for the tests (src/sdk/ only).
#pragma once

#include <functional>
#include <istream>
#include <nlohmann/json.hpp>
#include <ostream>

#include "bifrost/workflow.h"

namespace bifrost::sdk::internal {

// RunWorkflow reading the execution's document from `in` instead of stdin, and printing to
// `out` and `err` instead of stdout and stderr. The result document still goes to the file
// descriptor named by BIFROST_RESULT_FD (default 3).
int RunWorkflow(int argc, char** argv, const WorkflowSpec& spec,
                const std::function<nlohmann::json(WorkflowContext&)>& body, std::istream& in,
                std::ostream& out, std::ostream& err);

// "<Type>: <what()>" for the exception being handled (call it inside a catch block).
std::string DescribeCurrentException();

}  // namespace bifrost::sdk::internal
