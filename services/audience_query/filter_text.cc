#include "services/audience_query/filter_text.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "services/audience_query/filter_tree.h"

namespace contacts {
namespace {

// Parentheses and NOTs nested deeper than this are refused before the tree depth is even known,
// so that the recursive-descent parser cannot run out of stack.
constexpr int kMaxNesting = 100;

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string LowerCopy(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = Lower(c);
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

bool IsAlpha(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Length of the UTF-8 sequence starting at text[i], or 0 when it is not valid UTF-8.
size_t Utf8SequenceLength(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) return 1;
  size_t length;
  uint32_t code_point;
  if ((lead & 0xE0) == 0xC0) {
    length = 2;
    code_point = lead & 0x1F;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3;
    code_point = lead & 0x0F;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4;
    code_point = lead & 0x07;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  for (size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    code_point = (code_point << 6) | (byte(i + k) & 0x3F);
  }
  static constexpr uint32_t kMinimum[] = {0, 0, 0x80, 0x800, 0x10000};
  if (code_point < kMinimum[length] || code_point > 0x10FFFF) return 0;  // overlong or too large
  if (code_point >= 0xD800 && code_point <= 0xDFFF) return 0;            // surrogate
  return length;
}

enum class TokenKind { kIdentifier, kString, kNumber, kOperator, kLeftParen, kRightParen, kComma, kEnd, kError };

struct Token {
  TokenKind kind = TokenKind::kEnd;
  std::string text;     // identifier or operator as written, string decoded, number as written, error message
  size_t position = 0;  // 1-based character position
};

std::string Shorten(std::string_view text) {
  constexpr size_t kMax = 40;
  if (text.size() <= kMax) return std::string(text);
  size_t cut = kMax;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // whole code points
  return std::string(text.substr(0, cut)) + "...";
}

std::string Describe(const Token& token) {
  switch (token.kind) {
    case TokenKind::kEnd:
      return "end of input";
    case TokenKind::kString:
      return "string " + QuoteFilterString(Shorten(token.text));
    case TokenKind::kNumber:
      return "number " + token.text;
    case TokenKind::kIdentifier:
    case TokenKind::kOperator:
      return fmt::format("\"{}\"", Shorten(token.text));
    case TokenKind::kLeftParen:
      return "\"(\"";
    case TokenKind::kRightParen:
      return "\")\"";
    case TokenKind::kComma:
      return "\",\"";
    case TokenKind::kError:
      break;
  }
  return "an error";
}

// Splits the text into tokens. Stops at the first lexical error, which becomes a kError token so
// that the parser reports errors in text order; the last token is always kEnd or kError.
class Lexer {
 public:
  explicit Lexer(std::string_view text) : text_(text) {}

  std::vector<Token> Run() {
    std::vector<Token> tokens;
    while (true) {
      Token token = Next();
      const TokenKind kind = token.kind;
      tokens.push_back(std::move(token));
      if (kind == TokenKind::kEnd || kind == TokenKind::kError) return tokens;
    }
  }

 private:
  Token Make(TokenKind kind, std::string text, size_t start) { return Token{kind, std::move(text), PositionOf(start)}; }
  Token Error(size_t at, std::string message) {
    return Token{TokenKind::kError, fmt::format("position {}: {}", PositionOf(at), message), PositionOf(at)};
  }
  // Characters (code points) before byte `offset`, plus one. Advances incrementally: tokens come in
  // order, so the whole pass is linear.
  size_t PositionOf(size_t offset) {
    if (offset < counted_offset_) {
      counted_offset_ = 0;
      counted_chars_ = 0;
    }
    for (; counted_offset_ < offset && counted_offset_ < text_.size(); ++counted_offset_) {
      if ((static_cast<unsigned char>(text_[counted_offset_]) & 0xC0) != 0x80) ++counted_chars_;
    }
    return counted_chars_ + 1;
  }

  Token Next() {
    while (pos_ < text_.size() &&
           (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
    if (pos_ >= text_.size()) return Make(TokenKind::kEnd, "", text_.size());
    const size_t start = pos_;
    const char c = text_[pos_];
    if (IsAlpha(c)) {
      while (pos_ < text_.size() && (IsAlpha(text_[pos_]) || IsDigit(text_[pos_]) || text_[pos_] == '_')) ++pos_;
      return Make(TokenKind::kIdentifier, std::string(text_.substr(start, pos_ - start)), start);
    }
    if (IsDigit(c) || (c == '-' && pos_ + 1 < text_.size() && IsDigit(text_[pos_ + 1]))) {
      if (c == '-') ++pos_;
      while (pos_ < text_.size() && IsDigit(text_[pos_])) ++pos_;
      if (pos_ < text_.size() && text_[pos_] == '.') {
        if (pos_ + 1 >= text_.size() || !IsDigit(text_[pos_ + 1])) {
          return Error(pos_ + 1, fmt::format("expected a digit after \"{}\"", text_.substr(start, pos_ + 1 - start)));
        }
        ++pos_;
        while (pos_ < text_.size() && IsDigit(text_[pos_])) ++pos_;
      }
      return Make(TokenKind::kNumber, std::string(text_.substr(start, pos_ - start)), start);
    }
    if (c == '"') return String();
    switch (c) {
      case '(':
        ++pos_;
        return Make(TokenKind::kLeftParen, "(", start);
      case ')':
        ++pos_;
        return Make(TokenKind::kRightParen, ")", start);
      case ',':
        ++pos_;
        return Make(TokenKind::kComma, ",", start);
      case '=':
        ++pos_;
        return Make(TokenKind::kOperator, "=", start);
      case '<':
      case '>':
        ++pos_;
        if (pos_ < text_.size() && text_[pos_] == '=') {
          ++pos_;
          return Make(TokenKind::kOperator, std::string(1, c) + "=", start);
        }
        return Make(TokenKind::kOperator, std::string(1, c), start);
      case '!':
        if (pos_ + 1 < text_.size() && text_[pos_ + 1] == '=') {
          pos_ += 2;
          return Make(TokenKind::kOperator, "!=", start);
        }
        return Error(start, "unexpected character \"!\" (did you mean \"!=\" or NOT?)");
      default:
        break;
    }
    const size_t length = Utf8SequenceLength(text_, pos_);
    if (length == 0) return Error(start, "invalid UTF-8");
    if (c == '\'') return Error(start, "unexpected character \"'\" (strings take double quotes)");
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      return Error(start, fmt::format("unexpected control character U+{:04X}", static_cast<unsigned char>(c)));
    }
    return Error(start, fmt::format("unexpected character \"{}\"", text_.substr(start, length)));
  }

  Token String() {
    const size_t start = pos_;
    ++pos_;  // the opening quote
    std::string value;
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == '"') {
        ++pos_;
        return Make(TokenKind::kString, std::move(value), start);
      }
      if (c == '\\') {
        if (pos_ + 1 >= text_.size()) break;
        const char escaped = text_[pos_ + 1];
        if (escaped != '"' && escaped != '\\') {
          const size_t length = Utf8SequenceLength(text_, pos_ + 1);
          if (length == 0) return Error(pos_ + 1, "invalid UTF-8");
          return Error(pos_, fmt::format("unknown escape \"\\{}\" in string (only \\\" and \\\\ are allowed)",
                                         text_.substr(pos_ + 1, length)));
        }
        value.push_back(escaped);
        pos_ += 2;
        continue;
      }
      const size_t length = Utf8SequenceLength(text_, pos_);
      if (length == 0) return Error(pos_, "invalid UTF-8");
      value.append(text_.substr(pos_, length));
      pos_ += length;
    }
    return Error(text_.size(), fmt::format("expected a closing \" for the string that starts at position {}, found "
                                           "end of input",
                                           PositionOf(start)));
  }

  std::string_view text_;
  size_t pos_ = 0;
  size_t counted_offset_ = 0;
  size_t counted_chars_ = 0;
};

// A parsed subtree and its depth (see FilterDepth).
struct Node {
  v1::Filter filter;
  int depth = 0;
};

struct FunctionSpec {
  const char* name;
  enum Kind { kName, kTimeBetween, kTimeAfter, kTimeBefore, kIdentity, kBlacklist } kind;
  int which = 0;  // for kName: 0 list, 1 segment, 2 control group; for time: 0 created, 1 modified;
                  // for kIdentity: the Identity value
};

constexpr FunctionSpec kFunctions[] = {
    {"in_list", FunctionSpec::kName, 0},
    {"in_segment", FunctionSpec::kName, 1},
    {"in_control_group", FunctionSpec::kName, 2},
    {"created_between", FunctionSpec::kTimeBetween, 0},
    {"created_after", FunctionSpec::kTimeAfter, 0},
    {"created_before", FunctionSpec::kTimeBefore, 0},
    {"modified_between", FunctionSpec::kTimeBetween, 1},
    {"modified_after", FunctionSpec::kTimeAfter, 1},
    {"modified_before", FunctionSpec::kTimeBefore, 1},
    {"has_email", FunctionSpec::kIdentity, v1::HAS_EMAIL},
    {"has_mobile", FunctionSpec::kIdentity, v1::HAS_MOBILE},
    {"identified", FunctionSpec::kIdentity, v1::IDENTIFIED},
    {"anonymous", FunctionSpec::kIdentity, v1::ANONYMOUS},
    {"blacklisted", FunctionSpec::kBlacklist, 0},
};

struct ChannelName {
  const char* name;
  v1::Channel channel;
};
constexpr ChannelName kChannels[] = {
    {"email", v1::EMAIL_CHANNEL}, {"sms", v1::SMS}, {"whatsapp", v1::WHATSAPP}, {"rcs", v1::RCS}};

struct ComparisonName {
  const char* text;
  v1::Operator op;
};
constexpr ComparisonName kComparisons[] = {{"=", v1::EQ},  {"!=", v1::NE}, {"<", v1::LT},
                                           {"<=", v1::LE}, {">", v1::GT},  {">=", v1::GE}};

constexpr const char* kOperatorList = "=, !=, <, <=, >, >=, BETWEEN, IN, CONTAINS, STARTS_WITH, IS SET or IS NOT SET";

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  absl::StatusOr<v1::Filter> ParseAll() {
    if (Peek().kind == TokenKind::kEnd) return Expected(Peek(), "a filter");
    auto node = ParseOr("");
    if (!node.ok()) return node.status();
    if (Peek().kind != TokenKind::kEnd) {
      if (Peek().kind == TokenKind::kRightParen) return Failure(Peek(), "unmatched \")\"");
      return Expected(Peek(), "AND, OR or end of input");
    }
    return std::move(node->filter);
  }

 private:
  const Token& Peek() const { return tokens_[index_]; }
  Token Take() {
    Token token = tokens_[index_];
    if (index_ + 1 < tokens_.size()) ++index_;
    return token;
  }
  bool PeekKeyword(std::string_view keyword) const {
    return Peek().kind == TokenKind::kIdentifier && EqualsIgnoreCase(Peek().text, keyword);
  }

  // Every error goes through here: a lexical error that the parser runs into wins, since it is what
  // stands at that position.
  absl::Status Failure(const Token& at, const std::string& message) const {
    if (at.kind == TokenKind::kError) return absl::InvalidArgumentError(at.text);
    return absl::InvalidArgumentError(fmt::format("position {}: {}", at.position, message));
  }
  absl::Status Expected(const Token& found, const std::string& what) const {
    return Failure(found, fmt::format("expected {}, found {}", what, Describe(found)));
  }

  absl::Status CheckDepth(int depth, const Token& at) const {
    if (depth <= kMaxFilterDepth) return absl::OkStatus();
    return Failure(at, fmt::format("the filter nests deeper than {} levels", kMaxFilterDepth));
  }

  // or := and ("OR" and)* ; and := unary ("AND" unary)*. `after` names the token just before the
  // list, for messages ("" at the start of the text).
  absl::StatusOr<Node> ParseList(bool is_or, const std::string& after) {
    const size_t first_index = index_;
    std::vector<Node> items;
    while (true) {
      const std::string before = items.empty() ? after : (is_or ? "OR" : "AND");
      auto item = is_or ? ParseList(false, before) : ParseUnary(before);
      if (!item.ok()) return item.status();
      items.push_back(*std::move(item));
      if (!PeekKeyword(is_or ? "OR" : "AND")) break;
      Take();
    }
    if (items.size() == 1) return std::move(items.front());
    Node node;
    int deepest = 0;
    auto* list = is_or ? node.filter.mutable_or_() : node.filter.mutable_and_();
    for (auto& item : items) {
      deepest = std::max(deepest, item.depth);
      *list->add_filters() = std::move(item.filter);
    }
    node.depth = deepest + 1;
    if (auto status = CheckDepth(node.depth, tokens_[first_index]); !status.ok()) return status;
    return node;
  }

  absl::StatusOr<Node> ParseOr(const std::string& after) { return ParseList(true, after); }

  // unary := "NOT" unary | "(" or ")" | term.
  absl::StatusOr<Node> ParseUnary(const std::string& after) {
    if (++nesting_ > kMaxNesting) {
      return Failure(Peek(), fmt::format("the filter nests deeper than {} parentheses and NOTs", kMaxNesting));
    }
    auto result = ParseUnaryInner(after);
    --nesting_;
    return result;
  }

  absl::StatusOr<Node> ParseUnaryInner(const std::string& after) {
    if (PeekKeyword("NOT")) {
      const Token not_token = Take();
      auto operand = ParseUnary("NOT");
      if (!operand.ok()) return operand.status();
      Node node;
      *node.filter.mutable_not_() = std::move(operand->filter);
      node.depth = operand->depth + 1;
      if (auto status = CheckDepth(node.depth, not_token); !status.ok()) return status;
      return node;
    }
    if (Peek().kind == TokenKind::kLeftParen) {
      const Token open = Take();
      auto inner = ParseOr("(");
      if (!inner.ok()) return inner.status();
      if (Peek().kind != TokenKind::kRightParen) {
        return Expected(Peek(), fmt::format("AND, OR or \")\" to close the \"(\" at position {}", open.position));
      }
      Take();
      return inner;
    }
    return ParseTerm(after);
  }

  absl::StatusOr<Node> ParseTerm(const std::string& after) {
    const Token& head = Peek();
    const std::string what = after.empty() ? std::string("a condition (an attribute, a function or \"(\")")
                                           : fmt::format("a condition after \"{}\"", after);
    if (head.kind != TokenKind::kIdentifier || EqualsIgnoreCase(head.text, "AND") ||
        EqualsIgnoreCase(head.text, "OR")) {
      return Expected(head, what);
    }
    const Token name = Take();
    if (Peek().kind == TokenKind::kLeftParen) return ParseFunction(name);
    if (name.text.size() > kMaxAttributeNameBytes) {
      return Failure(name, fmt::format("attribute name is {} bytes long, at most {} are allowed", name.text.size(),
                                       kMaxAttributeNameBytes));
    }
    return ParsePredicate(name);
  }

  // literal := string | number | true | false. `where` says where the value belongs, for messages.
  absl::StatusOr<std::string> ParseLiteral(const std::string& where) {
    const Token& token = Peek();
    if (token.kind == TokenKind::kString || token.kind == TokenKind::kNumber) return Take().text;
    if (token.kind == TokenKind::kIdentifier &&
        (EqualsIgnoreCase(token.text, "true") || EqualsIgnoreCase(token.text, "false"))) {
      return LowerCopy(Take().text);
    }
    std::string message = fmt::format("expected a value {}, found {}", where, Describe(token));
    if (token.kind == TokenKind::kIdentifier) message += " (put text values in double quotes)";
    return Failure(token, message);
  }

  absl::StatusOr<Node> ParsePredicate(const Token& name) {
    Node node;
    node.depth = 1;
    auto* predicate = node.filter.mutable_term()->mutable_attribute();
    predicate->set_attribute(name.text);
    const Token& op = Peek();
    if (op.kind == TokenKind::kOperator) {
      Take();
      for (const auto& comparison : kComparisons) {
        if (op.text == comparison.text) predicate->set_op(comparison.op);
      }
      auto value = ParseLiteral(fmt::format("after \"{}\"", op.text));
      if (!value.ok()) return value.status();
      predicate->add_values(*std::move(value));
      return node;
    }
    if (op.kind != TokenKind::kIdentifier) {
      return Expected(op, fmt::format("an operator after \"{}\" ({})", name.text, kOperatorList));
    }
    const std::string keyword = LowerCopy(op.text);
    if (keyword == "between") {
      Take();
      predicate->set_op(v1::BETWEEN);
      auto low = ParseLiteral("after BETWEEN");
      if (!low.ok()) return low.status();
      if (!PeekKeyword("AND")) return Expected(Peek(), "AND between the two values of BETWEEN");
      Take();
      auto high = ParseLiteral("after BETWEEN ... AND");
      if (!high.ok()) return high.status();
      predicate->add_values(*std::move(low));
      predicate->add_values(*std::move(high));
      return node;
    }
    if (keyword == "in") {
      Take();
      predicate->set_op(v1::IN);
      if (Peek().kind != TokenKind::kLeftParen) return Expected(Peek(), "\"(\" after IN");
      Take();
      auto first = ParseLiteral("in the IN list");
      if (!first.ok()) return first.status();
      predicate->add_values(*std::move(first));
      while (Peek().kind == TokenKind::kComma) {
        Take();
        auto next = ParseLiteral("after \",\" in the IN list");
        if (!next.ok()) return next.status();
        predicate->add_values(*std::move(next));
      }
      if (Peek().kind != TokenKind::kRightParen) return Expected(Peek(), "\",\" or \")\" in the IN list");
      Take();
      if (predicate->values_size() > kMaxInValues) {  // the store evaluates no longer list
        return Failure(op, fmt::format("IN on \"{}\" has {} values, at most {} are allowed", name.text,
                                       predicate->values_size(), kMaxInValues));
      }
      return node;
    }
    if (keyword == "contains" || keyword == "starts_with") {
      Take();
      predicate->set_op(keyword == "contains" ? v1::CONTAINS : v1::STARTS_WITH);
      auto value = ParseLiteral(keyword == "contains" ? "after CONTAINS" : "after STARTS_WITH");
      if (!value.ok()) return value.status();
      predicate->add_values(*std::move(value));
      return node;
    }
    if (keyword == "starts") {
      Take();
      if (!PeekKeyword("WITH")) return Expected(Peek(), "WITH after STARTS");
      Take();
      predicate->set_op(v1::STARTS_WITH);
      auto value = ParseLiteral("after STARTS WITH");
      if (!value.ok()) return value.status();
      predicate->add_values(*std::move(value));
      return node;
    }
    if (keyword == "is") {
      Take();
      bool negated = false;
      if (PeekKeyword("NOT")) {
        Take();
        negated = true;
      }
      if (!PeekKeyword("SET")) return Expected(Peek(), negated ? "SET after IS NOT" : "SET or NOT SET after IS");
      Take();
      predicate->set_op(negated ? v1::IS_NOT_SET : v1::IS_SET);
      return node;
    }
    return Expected(op, fmt::format("an operator after \"{}\" ({})", name.text, kOperatorList));
  }

  // One string argument of `function`; `index` counts from 1 for messages.
  absl::StatusOr<std::string> ParseStringArgument(const std::string& function) {
    const Token& token = Peek();
    if (token.kind != TokenKind::kString) {
      return Expected(token, fmt::format("a string argument for {}() (in double quotes)", function));
    }
    return Take().text;
  }

  // Consumes the ")" that ends a function call; `what` is the expectation for the message.
  absl::Status ExpectClose(const std::string& what) {
    if (Peek().kind != TokenKind::kRightParen) return Expected(Peek(), what);
    Take();
    return absl::OkStatus();
  }

  absl::StatusOr<Node> ParseFunction(const Token& name) {
    const std::string lowered = LowerCopy(name.text);
    const FunctionSpec* spec = nullptr;
    for (const auto& candidate : kFunctions) {
      if (lowered == candidate.name) spec = &candidate;
    }
    if (spec == nullptr) return Failure(name, fmt::format("unknown function \"{}\"", name.text));
    Take();  // "("
    const std::string function = spec->name;
    Node node;
    node.depth = 1;
    v1::Term* term = node.filter.mutable_term();
    switch (spec->kind) {
      case FunctionSpec::kName: {
        const Token& at = Peek();
        auto value = ParseStringArgument(function);
        if (!value.ok()) return value.status();
        if (value->empty()) return Failure(at, fmt::format("{}() needs a non-empty name", function));
        if (value->size() > kMaxCatalogNameBytes) {
          return Failure(at, fmt::format("{}() name is {} bytes long, at most {} are allowed", function, value->size(),
                                         kMaxCatalogNameBytes));
        }
        if (spec->which == 0) term->set_in_list(*value);
        if (spec->which == 1) term->set_in_segment(*value);
        if (spec->which == 2) term->set_in_control_group(*value);
        if (auto status = ExpectClose(fmt::format("\")\" after the argument of {}()", function)); !status.ok())
          return status;
        return node;
      }
      case FunctionSpec::kTimeBetween:
      case FunctionSpec::kTimeAfter:
      case FunctionSpec::kTimeBefore: {
        v1::TimeRange* range = spec->which == 0 ? term->mutable_created() : term->mutable_modified();
        const Token& at = Peek();
        auto first = ParseStringArgument(function);
        if (!first.ok()) return first.status();
        if (spec->kind == FunctionSpec::kTimeBetween) {
          if (Peek().kind != TokenKind::kComma)
            return Expected(Peek(), fmt::format("\",\" and a second argument for {}()", function));
          Take();
          auto second = ParseStringArgument(function);
          if (!second.ok()) return second.status();
          range->set_from(*first);
          range->set_to(*second);
          if (auto status = ExpectClose(fmt::format("\")\" after the arguments of {}()", function)); !status.ok())
            return status;
          return node;
        }
        if (first->empty()) {
          return Failure(at, fmt::format("{}() needs a date (YYYY-MM-DD) or an RFC 3339 datetime", function));
        }
        if (spec->kind == FunctionSpec::kTimeAfter) {
          range->set_from(*first);
        } else {
          range->set_to(*first);
        }
        if (auto status = ExpectClose(fmt::format("\")\" after the argument of {}()", function)); !status.ok())
          return status;
        return node;
      }
      case FunctionSpec::kIdentity: {
        term->set_identity(static_cast<v1::Identity>(spec->which));
        if (auto status =
                ExpectClose(fmt::format("\")\" after \"{}(\" ({}() takes no arguments)", name.text, function));
            !status.ok())
          return status;
        return node;
      }
      case FunctionSpec::kBlacklist: {
        const Token& at = Peek();
        auto value = ParseStringArgument(function);
        if (!value.ok()) return value.status();
        const std::string channel = LowerCopy(*value);
        bool found = false;
        for (const auto& candidate : kChannels) {
          if (channel == candidate.name) {
            term->set_blacklisted(candidate.channel);
            found = true;
          }
        }
        if (!found) {
          return Failure(at, fmt::format("unknown channel {}, expected \"email\", \"sms\", \"whatsapp\" or \"rcs\"",
                                         QuoteFilterString(Shorten(*value))));
        }
        if (auto status = ExpectClose(fmt::format("\")\" after the argument of {}()", function)); !status.ok())
          return status;
        return node;
      }
    }
    return Failure(name, "internal error: unhandled function");
  }

  std::vector<Token> tokens_;
  size_t index_ = 0;
  int nesting_ = 0;
};

// ----- Printing -----

bool IsNumberLiteral(std::string_view value) {
  size_t i = 0;
  if (i < value.size() && value[i] == '-') ++i;
  const size_t digits_start = i;
  while (i < value.size() && IsDigit(value[i])) ++i;
  if (i == digits_start) return false;
  if (i == value.size()) return true;
  if (value[i] != '.') return false;
  ++i;
  const size_t fraction_start = i;
  while (i < value.size() && IsDigit(value[i])) ++i;
  return i > fraction_start && i == value.size();
}

std::string Literal(std::string_view value) {
  if (value == "true" || value == "false" || IsNumberLiteral(value)) return std::string(value);
  return QuoteFilterString(value);
}

// Looks through lists of one filter, which print as their only member.
const v1::Filter& Unwrap(const v1::Filter& filter) {
  const v1::Filter* current = &filter;
  while (true) {
    if (current->has_and_() && current->and_().filters_size() == 1) {
      current = &current->and_().filters(0);
    } else if (current->has_or_() && current->or_().filters_size() == 1) {
      current = &current->or_().filters(0);
    } else {
      return *current;
    }
  }
}

bool IsList(const v1::Filter& filter, v1::Filter::NodeCase kind) {
  return filter.node_case() == kind && (kind == v1::Filter::kAnd ? filter.and_() : filter.or_()).filters_size() >= 2;
}

const char* OperatorText(v1::Operator op) {
  for (const auto& comparison : kComparisons) {
    if (comparison.op == op) return comparison.text;
  }
  return "?";
}

void PrintTimeRange(const char* prefix, const v1::TimeRange& range, std::string& out) {
  if (!range.from().empty() && range.to().empty()) {
    out += fmt::format("{}_after({})", prefix, QuoteFilterString(range.from()));
  } else if (range.from().empty() && !range.to().empty()) {
    out += fmt::format("{}_before({})", prefix, QuoteFilterString(range.to()));
  } else {
    out += fmt::format("{}_between({}, {})", prefix, QuoteFilterString(range.from()), QuoteFilterString(range.to()));
  }
}

void PrintPredicate(const v1::AttributePredicate& predicate, std::string& out) {
  auto value = [&](int i) { return i < predicate.values_size() ? Literal(predicate.values(i)) : std::string("\"\""); };
  out += predicate.attribute();
  switch (predicate.op()) {
    case v1::BETWEEN:
      out += fmt::format(" BETWEEN {} AND {}", value(0), value(1));
      return;
    case v1::IN: {
      out += " IN (";
      for (int i = 0; i < predicate.values_size(); ++i) {
        if (i > 0) out += ", ";
        out += value(i);
      }
      out += ")";
      return;
    }
    case v1::CONTAINS:
      out += " CONTAINS " + value(0);
      return;
    case v1::STARTS_WITH:
      out += " STARTS_WITH " + value(0);
      return;
    case v1::IS_SET:
      out += " IS SET";
      return;
    case v1::IS_NOT_SET:
      out += " IS NOT SET";
      return;
    default:
      out += fmt::format(" {} {}", OperatorText(predicate.op()), value(0));
      return;
  }
}

void PrintTerm(const v1::Term& term, std::string& out) {
  switch (term.kind_case()) {
    case v1::Term::kAttribute:
      PrintPredicate(term.attribute(), out);
      return;
    case v1::Term::kCreated:
      PrintTimeRange("created", term.created(), out);
      return;
    case v1::Term::kModified:
      PrintTimeRange("modified", term.modified(), out);
      return;
    case v1::Term::kInList:
      out += "in_list(" + QuoteFilterString(term.in_list()) + ")";
      return;
    case v1::Term::kInSegment:
      out += "in_segment(" + QuoteFilterString(term.in_segment()) + ")";
      return;
    case v1::Term::kInControlGroup:
      out += "in_control_group(" + QuoteFilterString(term.in_control_group()) + ")";
      return;
    case v1::Term::kIdentity:
      for (const auto& function : kFunctions) {
        if (function.kind == FunctionSpec::kIdentity && function.which == term.identity()) {
          out += std::string(function.name) + "()";
          return;
        }
      }
      out += "identity_unspecified()";
      return;
    case v1::Term::kBlacklisted:
      for (const auto& channel : kChannels) {
        if (channel.channel == term.blacklisted()) {
          out += fmt::format("blacklisted(\"{}\")", channel.name);
          return;
        }
      }
      out += "blacklisted(\"\")";
      return;
    case v1::Term::KIND_NOT_SET:
      break;
  }
  out += "<empty term>";
}

void Print(const v1::Filter& filter, std::string& out);

// Prints `child` of a parent of kind `parent` (kAnd, kOr or kNot), in parentheses where needed.
void PrintChild(const v1::Filter& child, v1::Filter::NodeCase parent, std::string& out) {
  const v1::Filter& inner = Unwrap(child);
  bool parens = false;
  if (parent == v1::Filter::kNot) {
    parens = IsList(inner, v1::Filter::kAnd) || IsList(inner, v1::Filter::kOr);
  } else if (parent == v1::Filter::kAnd) {
    parens = IsList(inner, v1::Filter::kAnd) || IsList(inner, v1::Filter::kOr);
  } else {
    parens = IsList(inner, v1::Filter::kOr);
  }
  if (parens) out += "(";
  Print(inner, out);
  if (parens) out += ")";
}

void Print(const v1::Filter& filter, std::string& out) {
  const v1::Filter& node = Unwrap(filter);
  switch (node.node_case()) {
    case v1::Filter::kAnd:
    case v1::Filter::kOr: {
      const bool is_and = node.node_case() == v1::Filter::kAnd;
      const auto& list = is_and ? node.and_() : node.or_();
      if (list.filters_size() == 0) {
        out += is_and ? "identified()" : "anonymous()";
        return;
      }
      for (int i = 0; i < list.filters_size(); ++i) {
        if (i > 0) out += is_and ? " AND " : " OR ";
        PrintChild(list.filters(i), node.node_case(), out);
      }
      return;
    }
    case v1::Filter::kNot:
      out += "NOT ";
      PrintChild(node.not_(), v1::Filter::kNot, out);
      return;
    case v1::Filter::kTerm:
      PrintTerm(node.term(), out);
      return;
    case v1::Filter::NODE_NOT_SET:
      break;
  }
}

}  // namespace

std::string QuoteFilterString(std::string_view value) {
  std::string out;
  out.reserve(value.size() + 2);
  out.push_back('"');
  for (char c : value) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

absl::StatusOr<v1::Filter> ParseFilterText(std::string_view text) {
  if (text.size() > kMaxFilterTextBytes) {
    return absl::InvalidArgumentError(fmt::format(
        "position 1: the filter text is {} bytes long, at most {} are allowed", text.size(), kMaxFilterTextBytes));
  }
  Parser parser(Lexer(text).Run());
  return parser.ParseAll();
}

std::string PrintFilterText(const v1::Filter& filter) {
  std::string out;
  Print(filter, out);
  return out;
}

}  // namespace contacts
