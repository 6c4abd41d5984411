#include "config/hcl.h"

#include <cctype>
#include <cstdlib>

#include "util/status.h"

namespace coffer::hcl {
namespace {

constexpr int kMaxDepth = 64;

class Parser {
 public:
  explicit Parser(std::string_view t) : t_(t) {}

  absl::StatusOr<std::vector<Item>> Document() {
    SkipSpace();
    std::vector<Item> items;
    if (Peek() == '{') {  // JSON document, or an HCL object literal
      ++pos_;
      RETURN_IF_ERROR(Body(items, '}', 0));
      SkipSpace();
      if (pos_ < t_.size()) return Error("unexpected content after the closing '}'");
      return items;
    }
    RETURN_IF_ERROR(Body(items, '\0', 0));
    return items;
  }

 private:
  char Peek() const { return pos_ < t_.size() ? t_[pos_] : '\0'; }

  absl::Status Error(std::string_view msg) const {
    return absl::InvalidArgumentError(Cat("line ", line_, ": ", msg));
  }

  void SkipSpace(bool stop_at_newline = false) {
    while (pos_ < t_.size()) {
      char c = t_[pos_];
      if (c == '\n') {
        if (stop_at_newline) return;
        ++line_;
        ++pos_;
      } else if (c == ' ' || c == '\t' || c == '\r') {
        ++pos_;
      } else if (c == '#' || (c == '/' && pos_ + 1 < t_.size() && t_[pos_ + 1] == '/')) {
        while (pos_ < t_.size() && t_[pos_] != '\n') ++pos_;
      } else if (c == '/' && pos_ + 1 < t_.size() && t_[pos_ + 1] == '*') {
        pos_ += 2;
        while (pos_ + 1 < t_.size() && !(t_[pos_] == '*' && t_[pos_ + 1] == '/')) {
          if (t_[pos_] == '\n') ++line_;
          ++pos_;
        }
        pos_ = std::min(pos_ + 2, t_.size());
      } else {
        return;
      }
    }
  }

  static bool IdentChar(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  }

  absl::StatusOr<std::string> Identifier() {
    size_t start = pos_;
    while (pos_ < t_.size() && IdentChar(t_[pos_])) ++pos_;
    if (pos_ == start)
      return Error(Cat("expected a name, found '", std::string(1, Peek() ? Peek() : ' '), "'"));
    return std::string(t_.substr(start, pos_ - start));
  }

  absl::StatusOr<std::string> String() {
    ++pos_;  // opening quote
    std::string out;
    while (true) {
      if (pos_ >= t_.size()) return Error("unterminated string");
      char c = t_[pos_++];
      if (c == '"') break;
      if (c == '\n') return Error("newline in string");
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (pos_ >= t_.size()) return Error("unterminated string");
      char e = t_[pos_++];
      switch (e) {
        case 'n':
          out.push_back('\n');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case '"':
          out.push_back('"');
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '/':
          out.push_back('/');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'u': {
          if (pos_ + 4 > t_.size()) return Error("bad \\u escape");
          unsigned cp = 0;
          for (int i = 0; i < 4; ++i) {
            char h = t_[pos_++];
            cp <<= 4;
            if (h >= '0' && h <= '9')
              cp |= h - '0';
            else if (h >= 'a' && h <= 'f')
              cp |= h - 'a' + 10;
            else if (h >= 'A' && h <= 'F')
              cp |= h - 'A' + 10;
            else
              return Error("bad \\u escape");
          }
          if (cp < 0x80) {
            out.push_back(static_cast<char>(cp));
          } else if (cp < 0x800) {
            out.push_back(static_cast<char>(0xc0 | cp >> 6));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
          } else {
            out.push_back(static_cast<char>(0xe0 | cp >> 12));
            out.push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3f)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
          }
          break;
        }
        default:
          return Error(Cat("unknown escape \\", std::string(1, e), " in string"));
      }
    }
    return out;
  }

  absl::StatusOr<std::string> Heredoc() {
    pos_ += 2;  // <<
    bool indent = false;
    if (Peek() == '-') {
      indent = true;
      ++pos_;
    }
    ASSIGN_OR_RETURN(std::string marker, Identifier());
    while (pos_ < t_.size() && t_[pos_] != '\n') {
      if (t_[pos_] != ' ' && t_[pos_] != '\r' && t_[pos_] != '\t')
        return Error("heredoc marker must end its line");
      ++pos_;
    }
    if (pos_ >= t_.size()) return Error("unterminated heredoc");
    ++pos_;
    ++line_;
    std::string out;
    while (pos_ < t_.size()) {
      size_t eol = t_.find('\n', pos_);
      std::string_view line =
          t_.substr(pos_, eol == std::string_view::npos ? std::string_view::npos : eol - pos_);
      std::string_view trimmed = line;
      while (!trimmed.empty() && (trimmed.front() == ' ' || trimmed.front() == '\t'))
        trimmed.remove_prefix(1);
      while (!trimmed.empty() && (trimmed.back() == '\r' || trimmed.back() == ' '))
        trimmed.remove_suffix(1);
      pos_ = eol == std::string_view::npos ? t_.size() : eol + 1;
      if (trimmed == marker) return out;
      ++line_;
      out.append(indent ? trimmed : line);
      out.push_back('\n');
    }
    return Error(Cat("heredoc is missing its closing ", marker));
  }

  absl::Status ParseValue(Value& v, int depth) {
    if (depth > kMaxDepth) return Error("nesting is too deep");
    SkipSpace();
    v.line = line_;
    char c = Peek();
    if (c == '"') {
      v.kind = Value::Kind::kString;
      ASSIGN_OR_RETURN(v.str, String());
      return absl::OkStatus();
    }
    if (c == '<' && pos_ + 1 < t_.size() && t_[pos_ + 1] == '<') {
      v.kind = Value::Kind::kString;
      ASSIGN_OR_RETURN(v.str, Heredoc());
      return absl::OkStatus();
    }
    if (c == '{') {
      ++pos_;
      v.kind = Value::Kind::kObject;
      return Body(v.object, '}', depth + 1);
    }
    if (c == '[') {
      ++pos_;
      v.kind = Value::Kind::kList;
      while (true) {
        SkipSpace();
        if (Peek() == ']') {
          ++pos_;
          return absl::OkStatus();
        }
        if (pos_ >= t_.size()) return Error("unterminated list: expected ']'");
        Value elem;
        RETURN_IF_ERROR(ParseValue(elem, depth + 1));
        v.list.push_back(std::move(elem));
        if (v.list.size() > 100000) return Error("list is too long");
        SkipSpace();
        if (Peek() == ',') {
          ++pos_;
        } else if (Peek() != ']') {
          return Error("expected ',' or ']' in list");
        }
      }
    }
    if (c == '-' || c == '+' || std::isdigit(static_cast<unsigned char>(c))) {
      size_t start = pos_;
      ++pos_;
      while (
          pos_ < t_.size() &&
          (std::isalnum(static_cast<unsigned char>(t_[pos_])) || t_[pos_] == '.' ||
           ((t_[pos_] == '-' || t_[pos_] == '+') && (t_[pos_ - 1] == 'e' || t_[pos_ - 1] == 'E'))))
        ++pos_;
      std::string lit(t_.substr(start, pos_ - start));
      char* end = nullptr;
      double d = std::strtod(lit.c_str(), &end);
      if (end != lit.c_str() + lit.size()) return Error(Cat("invalid number \"", lit, "\""));
      v.kind = Value::Kind::kNumber;
      v.number = d;
      v.str = lit;
      return absl::OkStatus();
    }
    if (std::isalpha(static_cast<unsigned char>(c))) {
      ASSIGN_OR_RETURN(std::string word, Identifier());
      if (word == "true" || word == "false") {
        v.kind = Value::Kind::kBool;
        v.boolean = word == "true";
        return absl::OkStatus();
      }
      if (word == "null") {
        v.kind = Value::Kind::kNull;
        return absl::OkStatus();
      }
      return Error(Cat("unexpected word \"", word, "\": strings must be quoted"));
    }
    if (c == '\0') return Error("unexpected end of input: expected a value");
    return Error(Cat("unexpected character '", std::string(1, c), "'"));
  }

  // Items until `close` ('}' or end of input for '\0').
  absl::Status Body(std::vector<Item>& items, char close, int depth) {
    if (depth > kMaxDepth) return Error("nesting is too deep");
    while (true) {
      SkipSpace();
      if (close != '\0' && Peek() == close) {
        ++pos_;
        return absl::OkStatus();
      }
      if (pos_ >= t_.size()) {
        if (close == '\0') return absl::OkStatus();
        return Error(Cat("unexpected end of input: expected '", std::string(1, close), "'"));
      }
      Item item;
      item.line = line_;
      if (Peek() == '"') {
        ASSIGN_OR_RETURN(item.key, String());
      } else {
        ASSIGN_OR_RETURN(item.key, Identifier());
      }
      // Labels: quoted strings or names before '{'.
      std::vector<std::string> labels;
      while (true) {
        SkipSpace();
        char c = Peek();
        if (c == '=' || c == ':') {
          if (!labels.empty()) return Error("a block with labels needs '{' after them");
          ++pos_;
          RETURN_IF_ERROR(ParseValue(item.value, depth + 1));
          break;
        }
        if (c == '{') {
          ++pos_;
          Value body;
          body.kind = Value::Kind::kObject;
          body.line = line_;
          RETURN_IF_ERROR(Body(body.object, '}', depth + 1));
          // Nest the labels: a "b" { x } -> a = { b = { x } }
          for (size_t i = labels.size(); i-- > 0;) {
            Value wrap;
            wrap.kind = Value::Kind::kObject;
            wrap.line = item.line;
            wrap.object.push_back(Item{labels[i], item.line, std::move(body)});
            body = std::move(wrap);
          }
          item.value = std::move(body);
          break;
        }
        if (c == '"') {
          ASSIGN_OR_RETURN(std::string l, String());
          labels.push_back(std::move(l));
          continue;
        }
        if (IdentChar(c)) {
          ASSIGN_OR_RETURN(std::string l, Identifier());
          labels.push_back(std::move(l));
          continue;
        }
        return Error(Cat("expected '=' or '{' after \"", item.key, "\""));
      }
      items.push_back(std::move(item));
      if (items.size() > 100000) return Error("too many items");
      SkipSpace();
      if (Peek() == ',') ++pos_;
    }
  }

  std::string_view t_;
  size_t pos_ = 0;
  int line_ = 1;
};

}  // namespace

absl::StatusOr<std::vector<Item>> Parse(std::string_view text) { return Parser(text).Document(); }

std::string_view KindName(Value::Kind k) {
  switch (k) {
    case Value::Kind::kNull:
      return "null";
    case Value::Kind::kBool:
      return "boolean";
    case Value::Kind::kNumber:
      return "number";
    case Value::Kind::kString:
      return "string";
    case Value::Kind::kList:
      return "list";
    case Value::Kind::kObject:
      return "block";
  }
  return "?";
}

}  // namespace coffer::hcl
