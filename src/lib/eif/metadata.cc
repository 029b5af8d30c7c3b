// SPDX-License-Identifier: Apache-2.0
// The one file that calls nlohmann::json in ways that throw; every exception is caught here.
#include "lib/eif/metadata.h"

#include <algorithm>
#include <array>
#include <set>
#include <string_view>

#include <nlohmann/json.hpp>

namespace enclavia::eif {
namespace {

using Json = nlohmann::json;  // Objects are std::map: keys in bytewise order, as serde_json's.

// serde_json refuses input nested deeper than 128; nlohmann's dump() recurses, so bounding the
// depth before parsing also bounds the stack.
constexpr size_t kMaxDepth = 128;

constexpr std::array<std::string_view, 5> kBuildFields = {
    "BuildTime", "BuildTool", "BuildToolVersion", "OperatingSystem", "KernelVersion"};
constexpr std::array<std::string_view, 5> kTopFields = {
    "ImageName", "ImageVersion", "BuildMetadata", "DockerInfo", "CustomMetadata"};

bool IsKnown(std::string_view key, std::span<const std::string_view> fields) {
  return std::ranges::any_of(fields, [key](std::string_view f) { return f == key; });
}

// NestingDepth returns the deepest [ / { nesting in `text`, skipping string contents. It is a
// bound only: malformed text is left to the parser.
size_t NestingDepth(std::string_view text) {
  size_t depth = 0;
  size_t max_depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      max_depth = std::max(max_depth, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return max_depth;
}

// ParseJson parses `text` as the JSON serde_json would accept, or says why not. `dupes`, when
// set, collects top-level and BuildMetadata members that appear twice.
Result<Json> ParseJson(std::string_view text, std::string* dupe) {
  if (text.size() >= 3 && text.substr(0, 3) == "\xef\xbb\xbf") {
    return Error(Code::kMalformed, "byte order mark");  // nlohmann skips one; serde_json refuses.
  }
  if (NestingDepth(text) > kMaxDepth) {
    return Error(Code::kMalformed, "nested more than 128 deep");
  }
  std::set<std::string> top_keys;
  std::set<std::string> build_keys;
  std::string current_top;
  bool in_build = false;
  Json::parser_callback_t callback = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if (dupe == nullptr) {
      return true;
    }
    if (event == Json::parse_event_t::key && parsed.is_string()) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (depth == 1) {
        current_top = key;
        if (IsKnown(key, kTopFields) && !top_keys.insert(key).second && dupe->empty()) {
          *dupe = key;
        }
      } else if (depth == 2 && in_build) {
        if (IsKnown(key, kBuildFields) && !build_keys.insert(key).second && dupe->empty()) {
          *dupe = "BuildMetadata." + key;
        }
      }
    } else if (event == Json::parse_event_t::object_start && depth == 1) {
      in_build = current_top == "BuildMetadata";
      build_keys.clear();
    } else if (event == Json::parse_event_t::object_end && depth == 1) {
      in_build = false;
    }
    return true;
  };
  Json j;
  try {
    j = Json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/true,
                    /*ignore_comments=*/false);
  } catch (const Json::parse_error& e) {
    return Error(Code::kMalformed, "invalid JSON near byte " + std::to_string(e.byte));
  } catch (const Json::exception&) {
    return Error(Code::kMalformed, "invalid JSON");
  }
  return j;
}

// Dump renders compact JSON, escaping as serde_json does: \" \\ \b \f \n \r \t, other control
// characters as \u00xx, everything else (DEL and non-ASCII included) as raw UTF-8.
Result<std::string> Dump(const Json& j) {
  try {
    return j.dump(-1, ' ', /*ensure_ascii=*/false, Json::error_handler_t::strict);
  } catch (const Json::exception&) {
    return Error(Code::kMalformed, "invalid UTF-8");
  }
}

Result<std::string> Quote(std::string_view member, const std::string& s) {
  auto out = Dump(Json(s));
  if (!out) {
    return Error(Code::kInvalidArgument, "eif: metadata: " + std::string(member) + " is not UTF-8");
  }
  return out;
}

Result<std::string> Canonical(std::string_view member, const std::string& text) {
  auto parsed = ParseJson(text, nullptr);
  if (!parsed) {
    return Error(Code::kInvalidArgument, "eif: metadata: " + std::string(member) +
                                             " is not valid JSON: " + parsed.error().message());
  }
  auto out = Dump(*parsed);
  if (!out) {
    return Error(Code::kInvalidArgument, "eif: metadata: " + std::string(member) + " is not UTF-8");
  }
  return out;
}

Result<std::string> Encode(const IdentityInfo& info) {
  ASSIGN_OR_RETURN(std::string name, Quote("ImageName", info.image_name));
  ASSIGN_OR_RETURN(std::string version, Quote("ImageVersion", info.image_version));
  ASSIGN_OR_RETURN(std::string time, Quote("BuildTime", info.build_time));
  ASSIGN_OR_RETURN(std::string tool, Quote("BuildTool", info.build_tool));
  ASSIGN_OR_RETURN(std::string tool_version, Quote("BuildToolVersion", info.build_tool_version));
  ASSIGN_OR_RETURN(std::string os, Quote("OperatingSystem", info.operating_system));
  ASSIGN_OR_RETURN(std::string kernel, Quote("KernelVersion", info.kernel_version));
  ASSIGN_OR_RETURN(std::string docker, Canonical("DockerInfo", info.docker_info_json));
  ASSIGN_OR_RETURN(std::string custom, Canonical("CustomMetadata", info.custom_metadata_json));
  // Struct fields in declaration order (serde derive), compact (serde_json::to_vec).
  return R"({"ImageName":)" + name + R"(,"ImageVersion":)" + version +
         R"(,"BuildMetadata":{"BuildTime":)" + time + R"(,"BuildTool":)" + tool +
         R"(,"BuildToolVersion":)" + tool_version + R"(,"OperatingSystem":)" + os +
         R"(,"KernelVersion":)" + kernel + R"(},"DockerInfo":)" + docker + R"(,"CustomMetadata":)" +
         custom + "}";
}

Error Malformed(const std::string& what) { return {Code::kMalformed, "eif: metadata: " + what}; }

Result<std::string> StringMember(const Json& object, const char* key, const char* path) {
  auto it = object.find(key);
  if (it == object.end()) {
    return Malformed(std::string("missing ") + path);
  }
  if (!it->is_string()) {
    return Malformed(std::string(path) + " is not a string");
  }
  return it->get<std::string>();
}

}  // namespace

Result<void> ValidateIdentity(const IdentityInfo& info) {
  auto r = Encode(info);
  if (!r) {
    return std::move(r).error();
  }
  return Ok();
}

Bytes EncodeMetadata(const IdentityInfo& info) {
  auto r = Encode(info);
  ENCLAVIA_CHECK(r.has_value());  // Precondition: ValidateIdentity(info).
  return ToBytes(*r);
}

Result<IdentityInfo> DecodeMetadata(ByteSpan json) {
  std::string dupe;
  auto parsed = ParseJson(AsString(json), &dupe);
  if (!parsed) {
    return Malformed(parsed.error().message());
  }
  if (!dupe.empty()) {
    return Malformed("duplicate member " + dupe);
  }
  const Json& j = *parsed;
  if (!j.is_object()) {
    return Malformed("not a JSON object");
  }
  IdentityInfo info;
  ASSIGN_OR_RETURN(info.image_name, StringMember(j, "ImageName", "ImageName"));
  ASSIGN_OR_RETURN(info.image_version, StringMember(j, "ImageVersion", "ImageVersion"));
  auto build = j.find("BuildMetadata");
  if (build == j.end()) {
    return Malformed("missing BuildMetadata");
  }
  if (!build->is_object()) {
    return Malformed("BuildMetadata is not an object");
  }
  ASSIGN_OR_RETURN(info.build_time, StringMember(*build, "BuildTime", "BuildMetadata.BuildTime"));
  ASSIGN_OR_RETURN(info.build_tool, StringMember(*build, "BuildTool", "BuildMetadata.BuildTool"));
  ASSIGN_OR_RETURN(info.build_tool_version,
                   StringMember(*build, "BuildToolVersion", "BuildMetadata.BuildToolVersion"));
  ASSIGN_OR_RETURN(info.operating_system,
                   StringMember(*build, "OperatingSystem", "BuildMetadata.OperatingSystem"));
  ASSIGN_OR_RETURN(info.kernel_version,
                   StringMember(*build, "KernelVersion", "BuildMetadata.KernelVersion"));
  auto docker = j.find("DockerInfo");
  if (docker == j.end()) {
    return Malformed("missing DockerInfo");
  }
  auto custom = j.find("CustomMetadata");
  if (custom == j.end()) {
    return Malformed("missing CustomMetadata");
  }
  // The parser accepted only valid UTF-8, so these dumps succeed.
  ASSIGN_OR_RETURN(info.docker_info_json, Dump(*docker));
  ASSIGN_OR_RETURN(info.custom_metadata_json, Dump(*custom));
  return info;
}

}  // namespace enclavia::eif
