// The fixture of the end-to-end tests that run the three services: StartServices starts them
// (test::StartSuite) and makes a stub of each; a failed test prints their logs.
#pragma once

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "contacts/v1/audience_query.grpc.pb.h"
#include "contacts/v1/contact_store.grpc.pb.h"
#include "contacts/v1/import_processor.grpc.pb.h"

#include "tests/testing/service_process.h"

namespace contacts::test {

class SuiteFixture : public ::testing::Test {
 protected:
  // Starts contact-store, import-processor and audience-query, each with `flags` as well. Call it
  // as ASSERT_NO_FATAL_FAILURE(StartServices(...)).
  void StartServices(const std::vector<std::string>& flags = {}) {
    absl::StatusOr<Suite> suite = StartSuite(flags);
    ASSERT_TRUE(suite.ok()) << suite.status();
    store_ = std::move(suite->store);
    importer_ = std::move(suite->importer);
    audience_ = std::move(suite->audience);
    store_stub_ = v1::ContactStore::NewStub(store_->Channel());
    import_stub_ = v1::ImportProcessor::NewStub(importer_->Channel());
    audience_stub_ = v1::AudienceQuery::NewStub(audience_->Channel());
  }

  void TearDown() override {
    if (!HasFailure()) return;
    for (ServiceProcess* p : {store_.get(), importer_.get(), audience_.get()}) {
      if (p != nullptr) std::cerr << p->log();
    }
  }

  std::unique_ptr<ServiceProcess> store_, importer_, audience_;
  std::unique_ptr<v1::ContactStore::Stub> store_stub_;
  std::unique_ptr<v1::ImportProcessor::Stub> import_stub_;
  std::unique_ptr<v1::AudienceQuery::Stub> audience_stub_;
};

}  // namespace contacts::test
