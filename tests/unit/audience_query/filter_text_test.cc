#include "services/audience_query/filter_text.h"

#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include "services/audience_query/filter_tree.h"

namespace contacts {
namespace {

using google::protobuf::util::MessageDifferencer;

// ----- Tree builders -----

v1::Filter Pred(const std::string& attribute, v1::Operator op, std::vector<std::string> values) {
  v1::Filter filter;
  auto* predicate = filter.mutable_term()->mutable_attribute();
  predicate->set_attribute(attribute);
  predicate->set_op(op);
  for (auto& value : values) predicate->add_values(value);
  return filter;
}

v1::Filter And(std::vector<v1::Filter> children) {
  v1::Filter filter;
  filter.mutable_and_();
  for (auto& child : children) *filter.mutable_and_()->add_filters() = child;
  return filter;
}

v1::Filter Or(std::vector<v1::Filter> children) {
  v1::Filter filter;
  filter.mutable_or_();
  for (auto& child : children) *filter.mutable_or_()->add_filters() = child;
  return filter;
}

v1::Filter Not(const v1::Filter& child) {
  v1::Filter filter;
  *filter.mutable_not_() = child;
  return filter;
}

v1::Filter Eq(const std::string& attribute, const std::string& value) { return Pred(attribute, v1::EQ, {value}); }

v1::Filter Term(const std::function<void(v1::Term*)>& set) {
  v1::Filter filter;
  set(filter.mutable_term());
  return filter;
}

::testing::AssertionResult Parses(const std::string& text, const v1::Filter& expected) {
  auto parsed = ParseFilterText(text);
  if (!parsed.ok()) return ::testing::AssertionFailure() << "\"" << text << "\" failed: " << parsed.status();
  if (!MessageDifferencer::Equals(*parsed, expected)) {
    return ::testing::AssertionFailure() << "\"" << text << "\" parsed to\n"
                                         << parsed->DebugString() << "expected\n"
                                         << expected.DebugString();
  }
  return ::testing::AssertionSuccess();
}

std::string ErrorOf(const std::string& text) {
  auto parsed = ParseFilterText(text);
  if (parsed.ok()) return "OK: " + parsed->ShortDebugString();
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << text;
  return std::string(parsed.status().message());
}

// ----- Operators and literals -----

TEST(FilterTextParseTest, ComparisonOperators) {
  EXPECT_TRUE(Parses(R"(city = "Pune")", Eq("city", "Pune")));
  EXPECT_TRUE(Parses(R"(city != "Pune")", Pred("city", v1::NE, {"Pune"})));
  EXPECT_TRUE(Parses("age < 30", Pred("age", v1::LT, {"30"})));
  EXPECT_TRUE(Parses("age <= 30", Pred("age", v1::LE, {"30"})));
  EXPECT_TRUE(Parses("age > 30", Pred("age", v1::GT, {"30"})));
  EXPECT_TRUE(Parses("age >= 30", Pred("age", v1::GE, {"30"})));
  EXPECT_TRUE(Parses("age>=30", Pred("age", v1::GE, {"30"})));
  EXPECT_TRUE(Parses("age<-3", Pred("age", v1::LT, {"-3"})));
}

TEST(FilterTextParseTest, RangeSetAndTextOperators) {
  EXPECT_TRUE(Parses("age BETWEEN 18 AND 30", Pred("age", v1::BETWEEN, {"18", "30"})));
  EXPECT_TRUE(Parses(R"(signup BETWEEN "2024-01-01" AND "2024-12-31")",
                     Pred("signup", v1::BETWEEN, {"2024-01-01", "2024-12-31"})));
  EXPECT_TRUE(Parses(R"(city IN ("Pune"))", Pred("city", v1::IN, {"Pune"})));
  EXPECT_TRUE(Parses(R"(city IN ("Pune", "Mumbai",3))", Pred("city", v1::IN, {"Pune", "Mumbai", "3"})));
  EXPECT_TRUE(Parses(R"(email CONTAINS "@gmail")", Pred("email", v1::CONTAINS, {"@gmail"})));
  EXPECT_TRUE(Parses(R"(name STARTS_WITH "Ra")", Pred("name", v1::STARTS_WITH, {"Ra"})));
  EXPECT_TRUE(Parses(R"(name STARTS WITH "Ra")", Pred("name", v1::STARTS_WITH, {"Ra"})));
  EXPECT_TRUE(Parses("mobile IS SET", Pred("mobile", v1::IS_SET, {})));
  EXPECT_TRUE(Parses("mobile IS NOT SET", Pred("mobile", v1::IS_NOT_SET, {})));
}

TEST(FilterTextParseTest, LiteralsBecomeTextValues) {
  EXPECT_TRUE(Parses("score = 12.50", Eq("score", "12.50")));
  EXPECT_TRUE(Parses("score = -0.5", Eq("score", "-0.5")));
  EXPECT_TRUE(Parses("code = 007", Eq("code", "007")));
  EXPECT_TRUE(Parses("vip = true", Eq("vip", "true")));
  EXPECT_TRUE(Parses("vip = FALSE", Eq("vip", "false")));
  EXPECT_TRUE(Parses(R"(vip = "TRUE")", Eq("vip", "TRUE")));
  EXPECT_TRUE(Parses(R"(note = "")", Eq("note", "")));
}

TEST(FilterTextParseTest, StringEscapesAndUnicode) {
  EXPECT_TRUE(Parses(R"(nick = "say \"hi\"")", Eq("nick", "say \"hi\"")));
  EXPECT_TRUE(Parses(R"(path = "C:\\temp\\")", Eq("path", "C:\\temp\\")));
  EXPECT_TRUE(Parses("city = \"Pun\xC3\xA9 \xE0\xA4\xAA\xE0\xA5\x81\xE0\xA4\xA3\xE0\xA5\x87\"",
                     Eq("city", "Pun\xC3\xA9 \xE0\xA4\xAA\xE0\xA5\x81\xE0\xA4\xA3\xE0\xA5\x87")));
  EXPECT_TRUE(Parses(R"(city = "AND OR NOT (")", Eq("city", "AND OR NOT (")));
}

TEST(FilterTextParseTest, AttributeNamesKeepTheirCaseAndMayLookLikeKeywords) {
  EXPECT_TRUE(Parses(R"(City_2 = "x")", Eq("City_2", "x")));
  EXPECT_TRUE(Parses(R"(in = "x")", Eq("in", "x")));
  EXPECT_TRUE(Parses(R"(in_list = "x")", Eq("in_list", "x")));
  EXPECT_TRUE(Parses("is IS SET", Pred("is", v1::IS_SET, {})));
}

// ----- Functions -----

TEST(FilterTextParseTest, MembershipFunctions) {
  EXPECT_TRUE(Parses(R"(in_list("vip"))", Term([](v1::Term* t) { t->set_in_list("vip"); })));
  EXPECT_TRUE(Parses(R"(in_segment("big spenders"))", Term([](v1::Term* t) { t->set_in_segment("big spenders"); })));
  EXPECT_TRUE(
      Parses(R"(in_control_group("q4-holdout"))", Term([](v1::Term* t) { t->set_in_control_group("q4-holdout"); })));
}

TEST(FilterTextParseTest, TimeRangeFunctions) {
  EXPECT_TRUE(Parses(R"(created_between("2024-01-01", "2024-01-31"))", Term([](v1::Term* t) {
                       t->mutable_created()->set_from("2024-01-01");
                       t->mutable_created()->set_to("2024-01-31");
                     })));
  EXPECT_TRUE(Parses(R"(created_after("2024-01-01"))",
                     Term([](v1::Term* t) { t->mutable_created()->set_from("2024-01-01"); })));
  EXPECT_TRUE(Parses(R"(created_before("2024-01-01T10:00:00Z"))",
                     Term([](v1::Term* t) { t->mutable_created()->set_to("2024-01-01T10:00:00Z"); })));
  EXPECT_TRUE(Parses(R"(modified_between("2024-01-01","2024-02-01"))", Term([](v1::Term* t) {
                       t->mutable_modified()->set_from("2024-01-01");
                       t->mutable_modified()->set_to("2024-02-01");
                     })));
  EXPECT_TRUE(Parses(R"(modified_after("2024-03-01"))",
                     Term([](v1::Term* t) { t->mutable_modified()->set_from("2024-03-01"); })));
  EXPECT_TRUE(Parses(R"(modified_before("2024-03-01"))",
                     Term([](v1::Term* t) { t->mutable_modified()->set_to("2024-03-01"); })));
}

TEST(FilterTextParseTest, IdentityFunctions) {
  EXPECT_TRUE(Parses("has_email()", Term([](v1::Term* t) { t->set_identity(v1::HAS_EMAIL); })));
  EXPECT_TRUE(Parses("has_mobile( )", Term([](v1::Term* t) { t->set_identity(v1::HAS_MOBILE); })));
  EXPECT_TRUE(Parses("identified()", Term([](v1::Term* t) { t->set_identity(v1::IDENTIFIED); })));
  EXPECT_TRUE(Parses("anonymous()", Term([](v1::Term* t) { t->set_identity(v1::ANONYMOUS); })));
}

TEST(FilterTextParseTest, BlacklistedFunctionTakesEveryChannelCaseInsensitively) {
  EXPECT_TRUE(Parses(R"(blacklisted("email"))", Term([](v1::Term* t) { t->set_blacklisted(v1::EMAIL_CHANNEL); })));
  EXPECT_TRUE(Parses(R"(blacklisted("SMS"))", Term([](v1::Term* t) { t->set_blacklisted(v1::SMS); })));
  EXPECT_TRUE(Parses(R"(blacklisted("WhatsApp"))", Term([](v1::Term* t) { t->set_blacklisted(v1::WHATSAPP); })));
  EXPECT_TRUE(Parses(R"(blacklisted("rcs"))", Term([](v1::Term* t) { t->set_blacklisted(v1::RCS); })));
}

TEST(FilterTextParseTest, FunctionNamesAreCaseInsensitive) {
  EXPECT_TRUE(Parses(R"(IN_LIST("vip"))", Term([](v1::Term* t) { t->set_in_list("vip"); })));
  EXPECT_TRUE(Parses("Has_Email()", Term([](v1::Term* t) { t->set_identity(v1::HAS_EMAIL); })));
}

// ----- Structure -----

TEST(FilterTextParseTest, NotBindsTighterThanAndWhichBindsTighterThanOr) {
  const auto a = Eq("a", "1"), b = Eq("b", "2"), c = Eq("c", "3");
  EXPECT_TRUE(Parses("a = 1 OR b = 2 AND c = 3", Or({a, And({b, c})})));
  EXPECT_TRUE(Parses("a = 1 AND b = 2 OR c = 3", Or({And({a, b}), c})));
  EXPECT_TRUE(Parses("NOT a = 1 AND b = 2", And({Not(a), b})));
  EXPECT_TRUE(Parses("NOT a = 1 OR b = 2", Or({Not(a), b})));
  EXPECT_TRUE(Parses("NOT NOT a = 1", Not(Not(a))));
}

TEST(FilterTextParseTest, ParenthesesOverridePrecedenceAndKeepTheirGroup) {
  const auto a = Eq("a", "1"), b = Eq("b", "2"), c = Eq("c", "3");
  EXPECT_TRUE(Parses("(a = 1 OR b = 2) AND c = 3", And({Or({a, b}), c})));
  EXPECT_TRUE(Parses("NOT (a = 1 AND b = 2)", Not(And({a, b}))));
  EXPECT_TRUE(Parses("(a = 1 AND b = 2) AND c = 3", And({And({a, b}), c})));
  EXPECT_TRUE(Parses("((a = 1))", a));
}

TEST(FilterTextParseTest, ChainsFlattenIntoOneList) {
  const auto a = Eq("a", "1"), b = Eq("b", "2"), c = Eq("c", "3"), d = Eq("d", "4");
  EXPECT_TRUE(Parses("a = 1 AND b = 2 AND c = 3 AND d = 4", And({a, b, c, d})));
  EXPECT_TRUE(Parses("a = 1 OR b = 2 OR c = 3 AND d = 4", Or({a, b, And({c, d})})));
}

TEST(FilterTextParseTest, KeywordsAreCaseInsensitive) {
  const auto a = Eq("a", "1"), b = Eq("b", "2");
  EXPECT_TRUE(Parses("not a = 1 and b = 2 Or a = 1", Or({And({Not(a), b}), a})));
  EXPECT_TRUE(Parses("age between 1 and 2", Pred("age", v1::BETWEEN, {"1", "2"})));
  EXPECT_TRUE(Parses("city in (1)", Pred("city", v1::IN, {"1"})));
  EXPECT_TRUE(Parses(R"(name contains "x")", Pred("name", v1::CONTAINS, {"x"})));
  EXPECT_TRUE(Parses(R"(name Starts With "x")", Pred("name", v1::STARTS_WITH, {"x"})));
  EXPECT_TRUE(Parses(R"(name starts_with "x")", Pred("name", v1::STARTS_WITH, {"x"})));
  EXPECT_TRUE(Parses("mobile is not set", Pred("mobile", v1::IS_NOT_SET, {})));
}

TEST(FilterTextParseTest, DesignDocExample) {
  EXPECT_TRUE(
      Parses(R"(city = "Pune" AND age >= 30 AND in_list("vip") AND NOT in_control_group("q4-holdout"))",
             And({Eq("city", "Pune"), Pred("age", v1::GE, {"30"}), Term([](v1::Term* t) { t->set_in_list("vip"); }),
                  Not(Term([](v1::Term* t) { t->set_in_control_group("q4-holdout"); }))})));
}

TEST(FilterTextParseTest, WhitespaceIncludesTabsAndNewlines) {
  EXPECT_TRUE(Parses("\n\ta = 1\r\n  AND\tb = 2 ", And({Eq("a", "1"), Eq("b", "2")})));
}

// ----- Errors, with exact positions -----

TEST(FilterTextErrorTest, EmptyInput) {
  EXPECT_EQ(ErrorOf(""), "position 1: expected a filter, found end of input");
  EXPECT_EQ(ErrorOf("   "), "position 4: expected a filter, found end of input");
}

TEST(FilterTextErrorTest, MissingValue) {
  EXPECT_EQ(ErrorOf("city = \"Pune\" AND age >="), "position 25: expected a value after \">=\", found end of input");
  EXPECT_EQ(ErrorOf("age >= AND"),
            "position 8: expected a value after \">=\", found \"AND\" (put text values in double "
            "quotes)");
  EXPECT_EQ(ErrorOf("city = Pune"),
            "position 8: expected a value after \"=\", found \"Pune\" (put text values in double quotes)");
  EXPECT_EQ(ErrorOf("a == 1"), "position 4: expected a value after \"=\", found \"=\"");
}

TEST(FilterTextErrorTest, UnknownFunction) {
  EXPECT_EQ(ErrorOf("in_lst(\"vip\")"), "position 1: unknown function \"in_lst\"");
  EXPECT_EQ(ErrorOf("a = 1 AND foo()"), "position 11: unknown function \"foo\"");
}

TEST(FilterTextErrorTest, MissingOperator) {
  EXPECT_EQ(ErrorOf("city"),
            "position 5: expected an operator after \"city\" (=, !=, <, <=, >, >=, BETWEEN, IN, CONTAINS, "
            "STARTS_WITH, IS SET or IS NOT SET), found end of input");
  EXPECT_EQ(ErrorOf("city LIKE \"x\""),
            "position 6: expected an operator after \"city\" (=, !=, <, <=, >, >=, BETWEEN, IN, CONTAINS, "
            "STARTS_WITH, IS SET or IS NOT SET), found \"LIKE\"");
  EXPECT_EQ(ErrorOf("city \"x\""),
            "position 6: expected an operator after \"city\" (=, !=, <, <=, >, >=, BETWEEN, IN, CONTAINS, "
            "STARTS_WITH, IS SET or IS NOT SET), found string \"x\"");
}

TEST(FilterTextErrorTest, MissingCondition) {
  EXPECT_EQ(ErrorOf("a = 1 AND"), "position 10: expected a condition after \"AND\", found end of input");
  EXPECT_EQ(ErrorOf("a = 1 OR"), "position 9: expected a condition after \"OR\", found end of input");
  EXPECT_EQ(ErrorOf("NOT"), "position 4: expected a condition after \"NOT\", found end of input");
  EXPECT_EQ(ErrorOf("a = 1 AND OR b = 2"), "position 11: expected a condition after \"AND\", found \"OR\"");
  EXPECT_EQ(ErrorOf("()"), "position 2: expected a condition after \"(\", found \")\"");
  EXPECT_EQ(ErrorOf("= 1"), "position 1: expected a condition (an attribute, a function or \"(\"), found \"=\"");
  EXPECT_EQ(ErrorOf("42"), "position 1: expected a condition (an attribute, a function or \"(\"), found number 42");
}

TEST(FilterTextErrorTest, Parentheses) {
  EXPECT_EQ(ErrorOf("(a = 1"),
            "position 7: expected AND, OR or \")\" to close the \"(\" at position 1, found end "
            "of input");
  EXPECT_EQ(ErrorOf("a = 1)"), "position 6: unmatched \")\"");
  EXPECT_EQ(ErrorOf("a = 1 b = 2"), "position 7: expected AND, OR or end of input, found \"b\"");
}

TEST(FilterTextErrorTest, OperatorShapes) {
  EXPECT_EQ(ErrorOf("a BETWEEN 1 2"), "position 13: expected AND between the two values of BETWEEN, found number 2");
  EXPECT_EQ(ErrorOf("a BETWEEN 1 AND"), "position 16: expected a value after BETWEEN ... AND, found end of input");
  EXPECT_EQ(ErrorOf("a IN 1"), "position 6: expected \"(\" after IN, found number 1");
  EXPECT_EQ(ErrorOf("a IN ()"), "position 7: expected a value in the IN list, found \")\"");
  EXPECT_EQ(ErrorOf("a IN (1 2)"), "position 9: expected \",\" or \")\" in the IN list, found number 2");
  EXPECT_EQ(ErrorOf("a IN (1,)"), "position 9: expected a value after \",\" in the IN list, found \")\"");
  EXPECT_EQ(ErrorOf("a IS"), "position 5: expected SET or NOT SET after IS, found end of input");
  EXPECT_EQ(ErrorOf("a IS NOT"), "position 9: expected SET after IS NOT, found end of input");
  EXPECT_EQ(ErrorOf("a STARTS \"x\""), "position 10: expected WITH after STARTS, found string \"x\"");
  EXPECT_EQ(ErrorOf("a CONTAINS"), "position 11: expected a value after CONTAINS, found end of input");
}

TEST(FilterTextErrorTest, Lexical) {
  EXPECT_EQ(ErrorOf("a # 1"), "position 3: unexpected character \"#\"");
  EXPECT_EQ(ErrorOf("a = 'x'"), "position 5: unexpected character \"'\" (strings take double quotes)");
  EXPECT_EQ(ErrorOf("a ! 1"), "position 3: unexpected character \"!\" (did you mean \"!=\" or NOT?)");
  EXPECT_EQ(ErrorOf("city = \"Pune"),
            "position 13: expected a closing \" for the string that starts at position 8, found end of input");
  EXPECT_EQ(ErrorOf(R"(a = "x\n")"), "position 7: unknown escape \"\\n\" in string (only \\\" and \\\\ are allowed)");
  EXPECT_EQ(ErrorOf("a = 1."), "position 7: expected a digit after \"1.\"");
  EXPECT_EQ(ErrorOf("a = \"\xFF\""), "position 6: invalid UTF-8");
  EXPECT_EQ(ErrorOf("a = 1 \xC3"), "position 7: invalid UTF-8");
  EXPECT_EQ(ErrorOf(std::string("a = 1 \0", 7)), "position 7: unexpected control character U+0000");
  EXPECT_EQ(ErrorOf("a =\x01"), "position 4: unexpected control character U+0001");
}

TEST(FilterTextErrorTest, AnEarlierParseErrorWinsOverALaterLexicalError) {
  EXPECT_EQ(ErrorOf("a = AND #"),
            "position 5: expected a value after \"=\", found \"AND\" (put text values in double "
            "quotes)");
}

TEST(FilterTextErrorTest, PositionsCountCharactersNotBytes) {
  // "Pünë" is 4 characters and 6 bytes.
  EXPECT_EQ(ErrorOf("city = \"P\xC3\xBCn\xC3\xAB\" OR"),
            "position 17: expected a condition after \"OR\", found end of input");
  EXPECT_EQ(ErrorOf("city = \"\xE0\xA4\xAA\" \xE2\x82\xAC"), "position 12: unexpected character \"\xE2\x82\xAC\"");
}

TEST(FilterTextErrorTest, FunctionArguments) {
  EXPECT_EQ(ErrorOf("in_list(vip)"),
            "position 9: expected a string argument for in_list() (in double quotes), found \"vip\"");
  EXPECT_EQ(ErrorOf("in_list(\"\")"), "position 9: in_list() needs a non-empty name");
  EXPECT_EQ(ErrorOf("in_segment(\"a\", \"b\")"),
            "position 15: expected \")\" after the argument of in_segment(), found \",\"");
  EXPECT_EQ(ErrorOf("in_list(\"vip\""),
            "position 14: expected \")\" after the argument of in_list(), found end of "
            "input");
  EXPECT_EQ(ErrorOf("has_email(\"x\")"),
            "position 11: expected \")\" after \"has_email(\" (has_email() takes no arguments), found string \"x\"");
  EXPECT_EQ(ErrorOf("blacklisted(\"fax\")"),
            "position 13: unknown channel \"fax\", expected \"email\", \"sms\", \"whatsapp\" or \"rcs\"");
  EXPECT_EQ(ErrorOf("created_between(\"2024-01-01\")"),
            "position 29: expected \",\" and a second argument for created_between(), found \")\"");
  EXPECT_EQ(ErrorOf("created_after(\"\")"),
            "position 15: created_after() needs a date (YYYY-MM-DD) or an RFC 3339 datetime");
  EXPECT_EQ(ErrorOf("modified_before(2024-01-01)"),
            "position 17: expected a string argument for modified_before() (in double quotes), found number 2024");
}

TEST(FilterTextErrorTest, NamesLongerThanTheStoreAllows) {
  EXPECT_TRUE(ParseFilterText(std::string(kMaxAttributeNameBytes, 'a') + " = 1").ok());
  EXPECT_EQ(ErrorOf("b = 1 OR " + std::string(65, 'a') + " = 1"),
            "position 10: attribute name is 65 bytes long, at most 64 are allowed");
  EXPECT_TRUE(ParseFilterText("in_list(\"" + std::string(kMaxCatalogNameBytes, 'x') + "\")").ok());
  EXPECT_EQ(ErrorOf("in_list(\"" + std::string(20000, 'x') + "\")"),
            "position 9: in_list() name is 20000 bytes long, at most 128 are allowed");
  EXPECT_EQ(ErrorOf("NOT in_segment(\"" + std::string(129, 'x') + "\")"),
            "position 16: in_segment() name is 129 bytes long, at most 128 are allowed");
  EXPECT_EQ(ErrorOf("in_control_group(\"" + std::string(129, 'x') + "\")"),
            "position 18: in_control_group() name is 129 bytes long, at most 128 are allowed");
}

TEST(FilterTextErrorTest, InListsLongerThanTheStoreEvaluatesAreRefusedAtTheIn) {
  std::string list;
  for (int i = 0; i < kMaxInValues; ++i) list += fmt::format("{}{}", i == 0 ? "" : ",", i % 10);
  EXPECT_TRUE(ParseFilterText("city IN (" + list + ")").ok());
  EXPECT_EQ(ErrorOf("age = 1 AND city IN (" + list + ",1)"),
            "position 18: IN on \"city\" has 10001 values, at most 10000 are allowed");
}

TEST(FilterTextErrorTest, TooDeepOrTooLong) {
  std::string nots;
  for (int i = 0; i < 40; ++i) nots += "NOT ";
  EXPECT_NE(ErrorOf(nots + "a = 1").find("the filter nests deeper than 32 levels"), std::string::npos);

  std::string parens = std::string(500, '(') + "a = 1" + std::string(500, ')');
  EXPECT_EQ(ErrorOf(parens), "position 101: the filter nests deeper than 100 parentheses and NOTs");

  std::string deep_ors = "a = 1";
  for (int i = 0; i < 40; ++i) deep_ors = "(" + deep_ors + " OR b = 1) AND c = 1";
  EXPECT_NE(ErrorOf(deep_ors).find("deeper than 32 levels"), std::string::npos);

  const std::string long_text = "a = \"" + std::string(kMaxFilterTextBytes, 'x') + "\"";
  EXPECT_NE(ErrorOf(long_text).find("at most 65536 are allowed"), std::string::npos);
}

TEST(FilterTextErrorTest, AttributeNamedLikeAConnectiveIsRefused) {
  EXPECT_EQ(ErrorOf("and = 1"), "position 1: expected a condition (an attribute, a function or \"(\"), found \"and\"");
}

// ----- Printing -----

TEST(FilterTextPrintTest, PrintsCanonicalText) {
  auto parsed = ParseFilterText(
      R"(city="Pune" and age>=30 and in_list("vip") and not IN_CONTROL_GROUP("q4-holdout") and vip = TRUE)");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(PrintFilterText(*parsed),
            R"(city = "Pune" AND age >= 30 AND in_list("vip") AND NOT in_control_group("q4-holdout") AND vip = true)");
}

TEST(FilterTextPrintTest, ParenthesisesOnlyWherePrecedenceNeedsIt) {
  const auto a = Eq("a", "1"), b = Eq("b", "2"), c = Eq("c", "3");
  EXPECT_EQ(PrintFilterText(Or({a, And({b, c})})), "a = 1 OR b = 2 AND c = 3");
  EXPECT_EQ(PrintFilterText(And({Or({a, b}), c})), "(a = 1 OR b = 2) AND c = 3");
  EXPECT_EQ(PrintFilterText(Not(And({a, b}))), "NOT (a = 1 AND b = 2)");
  EXPECT_EQ(PrintFilterText(Not(Not(a))), "NOT NOT a = 1");
  EXPECT_EQ(PrintFilterText(And({And({a, b}), c})), "(a = 1 AND b = 2) AND c = 3");
  EXPECT_EQ(PrintFilterText(Or({Or({a, b}), c})), "(a = 1 OR b = 2) OR c = 3");
}

TEST(FilterTextPrintTest, EveryTermKind) {
  EXPECT_EQ(PrintFilterText(Pred("a", v1::BETWEEN, {"1", "x y"})), "a BETWEEN 1 AND \"x y\"");
  EXPECT_EQ(PrintFilterText(Pred("a", v1::IN, {"1", "true", "q\""})), R"(a IN (1, true, "q\""))");
  EXPECT_EQ(PrintFilterText(Pred("a", v1::CONTAINS, {"\\"})), R"(a CONTAINS "\\")");
  EXPECT_EQ(PrintFilterText(Pred("a", v1::STARTS_WITH, {"-1.5"})), "a STARTS_WITH -1.5");
  EXPECT_EQ(PrintFilterText(Pred("a", v1::IS_SET, {})), "a IS SET");
  EXPECT_EQ(PrintFilterText(Pred("a", v1::IS_NOT_SET, {})), "a IS NOT SET");
  EXPECT_EQ(PrintFilterText(Pred("a", v1::NE, {"1."})), "a != \"1.\"");
  EXPECT_EQ(PrintFilterText(Term([](v1::Term* t) { t->mutable_created()->set_from("2024-01-01"); })),
            R"(created_after("2024-01-01"))");
  EXPECT_EQ(PrintFilterText(Term([](v1::Term* t) { t->mutable_modified()->set_to("2024-01-01"); })),
            R"(modified_before("2024-01-01"))");
  EXPECT_EQ(PrintFilterText(Term([](v1::Term* t) {
              t->mutable_modified()->set_from("a");
              t->mutable_modified()->set_to("b");
            })),
            R"(modified_between("a", "b"))");
  EXPECT_EQ(PrintFilterText(Term([](v1::Term* t) { t->set_blacklisted(v1::WHATSAPP); })), R"(blacklisted("whatsapp"))");
  EXPECT_EQ(PrintFilterText(Term([](v1::Term* t) { t->set_identity(v1::HAS_MOBILE); })), "has_mobile()");
  EXPECT_EQ(PrintFilterText(Term([](v1::Term* t) { t->set_in_segment("s"); })), R"(in_segment("s"))");
}

TEST(FilterTextPrintTest, DegenerateListsPrintAsTheirMeaning) {
  EXPECT_EQ(PrintFilterText(And({Eq("a", "1")})), "a = 1");
  EXPECT_EQ(PrintFilterText(And({})), "identified()");
  EXPECT_EQ(PrintFilterText(Or({})), "anonymous()");
  EXPECT_EQ(PrintFilterText(Not(Or({And({Eq("a", "1"), Eq("b", "1")})}))), "NOT (a = 1 AND b = 1)");
}

// ----- Round trip on random trees -----

class RandomTrees {
 public:
  explicit RandomTrees(uint32_t seed) : rng_(seed) {}

  // A tree the parser can produce: lists of two or more filters, valid names and values.
  v1::Filter Tree(int depth) {
    const int choice = depth <= 1 ? 3 : Uniform(0, 5);
    if (choice == 0 || choice == 1) {
      v1::Filter filter;
      auto* list = choice == 0 ? filter.mutable_and_() : filter.mutable_or_();
      const int count = Uniform(2, 4);
      for (int i = 0; i < count; ++i) *list->add_filters() = Tree(depth - 1);
      return filter;
    }
    if (choice == 2) return Not(Tree(depth - 1));
    return Leaf();
  }

 private:
  int Uniform(int low, int high) { return std::uniform_int_distribution<int>(low, high)(rng_); }

  std::string Value() {
    switch (Uniform(0, 5)) {
      case 0:
        return std::to_string(Uniform(-1000, 1000));
      case 1:
        return std::to_string(Uniform(0, 99)) + "." + std::to_string(Uniform(0, 99));
      case 2:
        return Uniform(0, 1) ? "true" : "false";
      default: {
        static const char* kPieces[] = {
            "a", "Z", " ", "\"", "\\", "AND", "(", ")", ",", "\xC3\xA9", "\xF0\x9F\x98\x80", "1", "-", "'", "TRUE", ""};
        std::string value;
        const int count = Uniform(0, 5);
        for (int i = 0; i < count; ++i) value += kPieces[Uniform(0, 15)];
        return value;
      }
    }
  }

  std::string Name() {
    static const char* kNames[] = {"city", "age", "Score_2", "in", "is", "between", "x"};
    return kNames[Uniform(0, 6)];
  }

  v1::Filter Leaf() {
    v1::Filter filter;
    v1::Term* term = filter.mutable_term();
    switch (Uniform(0, 9)) {
      case 0: {
        static const v1::Operator kOps[] = {v1::EQ, v1::NE, v1::LT,       v1::LE,
                                            v1::GT, v1::GE, v1::CONTAINS, v1::STARTS_WITH};
        return Pred(Name(), kOps[Uniform(0, 7)], {Value()});
      }
      case 1:
        return Pred(Name(), v1::BETWEEN, {Value(), Value()});
      case 2: {
        std::vector<std::string> values;
        const int count = Uniform(1, 4);
        for (int i = 0; i < count; ++i) values.push_back(Value());
        return Pred(Name(), v1::IN, values);
      }
      case 3:
        return Pred(Name(), Uniform(0, 1) ? v1::IS_SET : v1::IS_NOT_SET, {});
      case 4: {
        v1::TimeRange* range = Uniform(0, 1) ? term->mutable_created() : term->mutable_modified();
        const int shape = Uniform(0, 2);
        if (shape != 1) range->set_from("2024-01-0" + std::to_string(Uniform(1, 9)));
        if (shape != 0) range->set_to("2024-02-0" + std::to_string(Uniform(1, 9)) + "T00:00:00Z");
        return filter;
      }
      case 5:
        term->set_in_list("list " + Value() + "x");
        return filter;
      case 6:
        term->set_in_segment("seg" + Value());
        return filter;
      case 7:
        term->set_in_control_group("cg-" + Value());
        return filter;
      case 8:
        term->set_identity(static_cast<v1::Identity>(Uniform(1, 4)));
        return filter;
      default:
        term->set_blacklisted(static_cast<v1::Channel>(Uniform(1, 4)));
        return filter;
    }
  }

  std::mt19937 rng_;
};

TEST(FilterTextRoundTripTest, ParseOfPrintIsIdentityOnRandomTrees) {
  for (uint32_t seed = 1; seed <= 400; ++seed) {
    RandomTrees trees(seed);
    const v1::Filter tree = trees.Tree(1 + static_cast<int>(seed % 6));
    const std::string text = PrintFilterText(tree);
    auto parsed = ParseFilterText(text);
    ASSERT_TRUE(parsed.ok()) << "seed " << seed << ": " << text << "\n" << parsed.status();
    ASSERT_TRUE(MessageDifferencer::Equals(*parsed, tree)) << "seed " << seed << ": " << text << "\nparsed:\n"
                                                           << parsed->DebugString() << "original:\n"
                                                           << tree.DebugString();
    ASSERT_TRUE(ValidateFilterTree(*parsed).ok()) << text;
  }
}

TEST(FilterTextRoundTripTest, PrintIsAFixedPointAfterOneParse) {
  const char* kTexts[] = {
      "a=1 or b=2 and not (c=3 or d=4)",
      R"(x in ( "a" ,2,true ) AND y Starts With "\"q\"" OR created_after("2024-01-01"))",
      "((a = 1))",
  };
  for (const char* text : kTexts) {
    auto first = ParseFilterText(text);
    ASSERT_TRUE(first.ok()) << first.status();
    const std::string printed = PrintFilterText(*first);
    auto second = ParseFilterText(printed);
    ASSERT_TRUE(second.ok()) << second.status();
    EXPECT_TRUE(MessageDifferencer::Equals(*first, *second)) << printed;
    EXPECT_EQ(PrintFilterText(*second), printed);
  }
}

// ----- Robustness: any input either parses into a tree that round-trips, or is refused with a position -----

TEST(FilterTextFuzzTest, RandomTokenSoupNeverCrashesAndAlwaysSaysWhere) {
  static const char* kPieces[] = {"a",
                                  "city",
                                  "=",
                                  "!=",
                                  "<",
                                  "<=",
                                  ">",
                                  ">=",
                                  "AND",
                                  "or",
                                  "NOT",
                                  "(",
                                  ")",
                                  ",",
                                  "\"x\"",
                                  "\"",
                                  "\\",
                                  "1",
                                  "-2.5",
                                  "1.",
                                  "true",
                                  "BETWEEN",
                                  "IN",
                                  "IS",
                                  "SET",
                                  "CONTAINS",
                                  "STARTS",
                                  "WITH",
                                  "in_list",
                                  "in_segment(\"s\")",
                                  "has_email()",
                                  "blacklisted",
                                  "created_after",
                                  " ",
                                  "\t",
                                  "#",
                                  "\xC3\xA9",
                                  "\xFF",
                                  "!",
                                  "'"};
  constexpr int kPieceCount = sizeof(kPieces) / sizeof(kPieces[0]);
  std::mt19937 rng(20240501);
  int parsed_ok = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string text;
    const int count = std::uniform_int_distribution<int>(0, 12)(rng);
    for (int i = 0; i < count; ++i) {
      text += kPieces[std::uniform_int_distribution<int>(0, kPieceCount - 1)(rng)];
      if (std::uniform_int_distribution<int>(0, 2)(rng) == 0) text += " ";
    }
    auto parsed = ParseFilterText(text);
    if (parsed.ok()) {
      ++parsed_ok;
      ASSERT_TRUE(ValidateFilterTree(*parsed).ok()) << text;
      auto again = ParseFilterText(PrintFilterText(*parsed));
      ASSERT_TRUE(again.ok()) << text << " -> " << PrintFilterText(*parsed) << ": " << again.status();
      ASSERT_TRUE(MessageDifferencer::Equals(*parsed, *again)) << text;
    } else {
      ASSERT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << text;
      ASSERT_EQ(parsed.status().message().rfind("position ", 0), 0u) << text << ": " << parsed.status();
    }
  }
  EXPECT_GT(parsed_ok, 20);  // the soup is not all errors, so the round-trip branch ran
}

TEST(FilterTextFuzzTest, MutatedValidTextEitherRoundTripsOrSaysWhere) {
  static const char* kInserts[] = {" AND ", " OR ", "NOT ", "(", ")", "\"", ",", "=", " IS ", "1", "x", "\\"};
  std::mt19937 rng(99);
  auto uniform = [&](size_t low, size_t high) { return std::uniform_int_distribution<size_t>(low, high)(rng); };
  int parsed_ok = 0;
  for (uint32_t seed = 1; seed <= 3000; ++seed) {
    RandomTrees trees(seed);
    std::string text = PrintFilterText(trees.Tree(1 + static_cast<int>(seed % 4)));
    const size_t mutations = uniform(1, 2);
    for (size_t m = 0; m < mutations && !text.empty(); ++m) {
      const size_t at = uniform(0, text.size() - 1);
      switch (uniform(0, 2)) {
        case 0:
          text.erase(at, uniform(1, 4));
          break;
        case 1:
          text.insert(at, kInserts[uniform(0, 11)]);
          break;
        default:
          text.insert(at, text.substr(at, uniform(1, 8)));
          break;
      }
    }
    auto parsed = ParseFilterText(text);
    if (parsed.ok()) {
      ++parsed_ok;
      auto again = ParseFilterText(PrintFilterText(*parsed));
      ASSERT_TRUE(again.ok()) << text << ": " << again.status();
      ASSERT_TRUE(MessageDifferencer::Equals(*parsed, *again)) << text;
    } else {
      ASSERT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << text;
      ASSERT_EQ(parsed.status().message().rfind("position ", 0), 0u) << text << ": " << parsed.status();
    }
  }
  EXPECT_GT(parsed_ok, 100);
}

TEST(FilterTextFuzzTest, RandomBytesNeverCrash) {
  std::mt19937 rng(7);
  for (int round = 0; round < 5000; ++round) {
    std::string text(std::uniform_int_distribution<int>(0, 40)(rng), '\0');
    for (char& c : text) c = static_cast<char>(std::uniform_int_distribution<int>(0, 255)(rng));
    auto parsed = ParseFilterText(text);
    if (!parsed.ok()) {
      ASSERT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
      ASSERT_EQ(parsed.status().message().rfind("position ", 0), 0u) << parsed.status();
    }
  }
}

}  // namespace
}  // namespace contacts
