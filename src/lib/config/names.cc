// SPDX-License-Identifier: Apache-2.0
#include "lib/config/names.h"

namespace enclavia::config {

bool ValidEnclaveName(std::string_view name) {
  if (name.empty() || name.size() > 63) {
    return false;
  }
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && i > 0);
    if (!ok) {
      return false;
    }
  }
  return true;
}

}  // namespace enclavia::config
